package bench

import "context"

func runConntrack(context.Context, *Env) (Result, error) {
	return Result{Skipped: []string{"not implemented yet"}}, nil
}
