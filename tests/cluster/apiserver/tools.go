//go:build tools

// Package tools pins the kube-apiserver and kubectl commands so that
// `go mod tidy` keeps their dependencies; scripts/setup builds them with
// `go build`.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
