//go:build tools

// Package tools pins the node's commands (kubelet, kube-proxy, kube-scheduler,
// kube-controller-manager) so that `go mod tidy` keeps their dependencies;
// scripts/setup builds them with `go build`.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
