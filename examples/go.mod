module github.com/proxykit/proxykit/examples

go 1.25

require github.com/proxykit/proxykit v0.0.0

replace github.com/proxykit/proxykit => ../
