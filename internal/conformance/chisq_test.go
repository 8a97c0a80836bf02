package conformance

import (
	"math"
	"testing"
)

func TestChiSquareCritical(t *testing.T) {
	// Reference values from the closed forms of the survival function:
	// erfc for df 1 and 3, e^(-x/2)·Σ (x/2)^k/k! for even df.
	tests := []struct {
		df    int
		alpha float64
		want  float64
	}{
		{1, 0.05, 3.841459},
		{2, 0.05, 5.991465},
		{3, 0.01, 11.344867},
		{1, 1e-6, 23.928127},
		{2, 1e-6, 27.631021},
		{3, 1e-6, 30.664850},
		{4, 1e-6, 33.376842},
		{10, 1e-6, 46.863047},
	}
	for _, tt := range tests {
		got := ChiSquareCritical(tt.df, tt.alpha)
		if math.Abs(got-tt.want) > 1e-4*tt.want {
			t.Errorf("ChiSquareCritical(%d, %g) = %.6f, want %.6f", tt.df, tt.alpha, got, tt.want)
		}
	}
}

func TestChiSquare(t *testing.T) {
	stat, df := ChiSquare([]int{25, 75}, []float64{0.25, 0.75})
	if stat != 0 || df != 1 {
		t.Errorf("ChiSquare(exact fit) = %v, %d; want 0, 1", stat, df)
	}
	// A 50/50 backend where 25/75 is required, 400 connections.
	stat, _ = ChiSquare([]int{200, 200}, []float64{0.25, 0.75})
	if stat < ChiSquareCritical(1, Alpha) {
		t.Errorf("ChiSquare(50/50 vs 25/75, n=400) = %v, below the critical value %v", stat, ChiSquareCritical(1, Alpha))
	}
}
