// Package affinity holds ClientIP session-affinity configuration and an
// expiring client→endpoint table.
//
// Config is part of a servicemap.Service and is validated with it
// (SEMANTICS §4: default timeout 10800 s, valid range 1–86400 s).
//
// Table is what kernel backends implement with recent-lists, dynamic sets
// or IPVS persistence, done in userspace: it remembers which endpoint each
// client was sent to, forgets records after a timeout of inactivity, and is
// bounded in size. proxykit's packet oracle (proxykit.Oracle) uses it to
// predict sticky choices, and a userspace proxy can use it directly.
//
// The package is pure Go: no kernel access, no dependencies beyond the
// standard library. Table is safe for concurrent use; Config is a value.
package affinity
