package bench

import "context"

func runIPVSVM(context.Context, *Env) (Result, error) {
	return Result{Skipped: []string{"not implemented yet"}}, nil
}
