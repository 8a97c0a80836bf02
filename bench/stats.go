package bench

import (
	"fmt"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0..100) of ds by the
// nearest-rank method; ds need not be sorted. Zero for none.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.999999) - 1
	i = max(0, min(i, len(s)-1))
	return s[i]
}

// median of ds.
func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }

// fmtDur prints a duration with 3 significant digits in a fitting unit.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%d ns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%.3g µs", float64(d)/1e3)
	case d < time.Second:
		return fmt.Sprintf("%.3g ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.3g s", d.Seconds())
}

// fmtBytes prints a byte count in B, KiB, MiB or GiB.
func fmtBytes(b uint64) string {
	const k = 1024
	switch {
	case b < k:
		return fmt.Sprintf("%d B", b)
	case b < k*k:
		return fmt.Sprintf("%.1f KiB", float64(b)/k)
	case b < k*k*k:
		return fmt.Sprintf("%.1f MiB", float64(b)/(k*k))
	}
	return fmt.Sprintf("%.2f GiB", float64(b)/(k*k*k))
}

// ratio prints a/b as "1.23×", or "–" without b.
func ratio(a, b time.Duration) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}
