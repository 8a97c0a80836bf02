package bench

import "context"

func runDataPlane(context.Context, *Env) (Result, error) {
	return Result{Skipped: []string{"not implemented yet"}}, nil
}
