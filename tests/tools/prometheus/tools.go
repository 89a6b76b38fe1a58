//go:build tools

// Package tools pins Prometheus (the server and promtool) so that
// `go mod tidy` keeps their dependencies; scripts/setup builds both with
// `go build`. tests/integration/test_metrics.py checks the sidecar's
// /metrics with promtool and scrapes it with the server.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
