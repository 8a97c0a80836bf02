package bench

import (
	"errors"
	"image/color"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// WritePlot draws p as a line chart with points and saves it as a PNG.
func WritePlot(path string, p Plot) error {
	if len(p.Series) == 0 {
		return errors.New("no series")
	}
	pl := plot.New()
	pl.Title.Text = p.Title
	pl.X.Label.Text = p.XLabel
	pl.Y.Label.Text = p.YLabel
	pl.Legend.Top = true
	pl.Legend.Left = true
	pl.Add(plotter.NewGrid())
	if p.LogX {
		pl.X.Scale = plot.LogScale{}
	}
	pl.X.Tick.Marker = dataTicks(p.Series, p.LogX)
	if p.LogY {
		pl.Y.Scale = plot.LogScale{}
		pl.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	for i, s := range p.Series {
		pts := make(plotter.XYs, 0, len(s.X))
		for j := range s.X {
			if j >= len(s.Y) {
				break
			}
			if (p.LogX && s.X[j] <= 0) || (p.LogY && s.Y[j] <= 0) {
				continue // log scales cannot show it
			}
			pts = append(pts, plotter.XY{X: s.X[j], Y: s.Y[j]})
		}
		if len(pts) == 0 {
			continue
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		c := plotutil.Color(s.Group)
		line.Color = c
		if s.Dashed {
			line.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		}
		points.Color = c
		points.Shape = plotutil.Shape(i)
		pl.Add(line, points)
		pl.Legend.Add(s.Name, line, points)
	}
	pl.BackgroundColor = color.White
	return pl.Save(8*vg.Inch, 5*vg.Inch, path)
}

// dataTicks labels the X axis at the series' X values (on a log scale,
// the positive ones).
func dataTicks(series []Series, log bool) plot.ConstantTicks {
	var xs []float64
	for _, s := range series {
		for _, x := range s.X {
			if !(log && x <= 0) {
				xs = append(xs, x)
			}
		}
	}
	slices.Sort(xs)
	xs = slices.Compact(xs)
	ticks := make(plot.ConstantTicks, len(xs))
	for i, x := range xs {
		ticks[i] = plot.Tick{Value: x, Label: strconv.FormatFloat(x, 'f', -1, 64)}
	}
	return ticks
}
