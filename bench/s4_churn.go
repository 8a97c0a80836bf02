package bench

import "context"

func runChurn(context.Context, *Env) (Result, error) {
	return Result{Skipped: []string{"not implemented yet"}}, nil
}
