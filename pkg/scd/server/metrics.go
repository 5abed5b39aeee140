package server

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// unmatchedRoute labels requests that matched no route (answered 404).
const unmatchedRoute = "unmatched"

// statusClasses are the label values of the code label, by status/100 - 1.
var statusClasses = [5]string{"1xx", "2xx", "3xx", "4xx", "5xx"}

// requestMetrics times every request by route (the OpenAPI operation ID)
// and status class; the histogram's count is the request rate. Its labels
// are fixed sets, so no request can grow the series. The observers are
// resolved once, so a request costs a histogram observation and no label
// lookup.
type requestMetrics struct {
	byRoute   [][5]prometheus.Observer // by route index, then status class
	unmatched [5]prometheus.Observer
}

func newRequestMetrics(reg prometheus.Registerer, routes []route) (*requestMetrics, error) {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "dss_http_request_duration_seconds",
		Help: "Time from a request's arrival at the API handler to its answer, by route (OpenAPI operation ID, " +
			"or \"unmatched\") and status class.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route", "code"})
	if err := reg.Register(h); err != nil {
		return nil, err
	}
	m := &requestMetrics{byRoute: make([][5]prometheus.Observer, len(routes))}
	for c, class := range statusClasses {
		for i, r := range routes {
			m.byRoute[i][c] = h.WithLabelValues(r.name, class)
		}
		m.unmatched[c] = h.WithLabelValues(unmatchedRoute, class)
	}
	return m, nil
}

// observe records one answered request; route is an index into the route
// table, or -1 for an unmatched path.
func (m *requestMetrics) observe(route, status int, start time.Time) {
	c := status/100 - 1
	if c < 0 || c >= len(statusClasses) {
		c = 4 // a status outside 100-599 cannot be sent; count it as a server error
	}
	obs := m.unmatched[c]
	if route >= 0 {
		obs = m.byRoute[route][c]
	}
	obs.Observe(time.Since(start).Seconds())
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
