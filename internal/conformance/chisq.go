package conformance

import (
	"fmt"
	"math"
)

// Alpha is the false-failure rate of the distribution checks: a correct
// backend fails a chi-square check with probability Alpha.
const Alpha = 1e-6

// ChiSquareCritical returns the value x such that a chi-square variable
// with df degrees of freedom exceeds x with probability alpha. It inverts
// the regularized upper incomplete gamma function by bisection.
func ChiSquareCritical(df int, alpha float64) float64 {
	if df < 1 || !(alpha > 0 && alpha < 1) {
		panic(fmt.Sprintf("conformance: ChiSquareCritical(%d, %g): need df >= 1 and 0 < alpha < 1", df, alpha))
	}
	lo, hi := 0.0, 1.0
	for chiSquareSF(df, hi) > alpha {
		hi *= 2
	}
	for range 200 {
		mid := (lo + hi) / 2
		if chiSquareSF(df, mid) > alpha {
			lo = mid
		} else {
			hi = mid
		}
		if hi-lo < 1e-9*hi {
			break
		}
	}
	return hi
}

// chiSquareSF is P(X > x) for X chi-square with df degrees of freedom:
// Q(df/2, x/2).
func chiSquareSF(df int, x float64) float64 {
	if x <= 0 {
		return 1
	}
	return gammaQ(float64(df)/2, x/2)
}

// gammaQ is the regularized upper incomplete gamma function Q(a, x), by
// its series for x < a+1 and its continued fraction otherwise (Numerical
// Recipes §6.2).
func gammaQ(a, x float64) float64 {
	lg, _ := math.Lgamma(a)
	front := math.Exp(-x + a*math.Log(x) - lg)
	if x < a+1 {
		sum, term := 1/a, 1/a
		for n := 1; n < 10000; n++ {
			term *= x / (a + float64(n))
			sum += term
			if math.Abs(term) < math.Abs(sum)*1e-16 {
				break
			}
		}
		return 1 - sum*front
	}
	// Modified Lentz's method.
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < 10000; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		del := d * c
		h *= del
		if math.Abs(del-1) < 1e-16 {
			break
		}
	}
	return front * h
}

// ChiSquare returns Pearson's statistic for observed counts against
// expected probabilities (which sum to 1) and its degrees of freedom, the
// number of categories minus one.
func ChiSquare(observed []int, probs []float64) (stat float64, df int) {
	n := 0
	for _, o := range observed {
		n += o
	}
	for i, p := range probs {
		e := p * float64(n)
		d := float64(observed[i]) - e
		stat += d * d / e
	}
	return stat, len(probs) - 1
}
