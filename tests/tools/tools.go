//go:build tools

// Package tools pins grpcurl so that `go mod tidy` keeps its dependencies;
// scripts/setup builds it with `go build`.
package tools

import _ "github.com/fullstorydev/grpcurl/cmd/grpcurl"
