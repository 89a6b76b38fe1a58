// crpeer: a controller-runtime controller for P1. It reconciles Widgets
// (unstructured) in one namespace from the manager's informer cache and, for
// each one whose status.bench.done is not set yet, merge-patches the status
// field, the way a controller-runtime operator usually does its work.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

var widgetGVK = schema.GroupVersionKind{Group: "bench.herald.dev", Version: "v1", Kind: "Widget"}

type reconciler struct {
	client.Client
	status      map[string]any
	subresource bool
}

func (r *reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(widgetGVK)
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if done, _, _ := unstructured.NestedBool(obj.Object, "status", "bench", "done"); done {
		return ctrl.Result{}, nil
	}
	base := obj.DeepCopy()
	for k, v := range r.status {
		if err := unstructured.SetNestedField(obj.Object, v, "status", k); err != nil {
			return ctrl.Result{}, err
		}
	}
	if r.subresource {
		return ctrl.Result{}, r.Status().Patch(ctx, obj, client.MergeFrom(base))
	}
	return ctrl.Result{}, r.Patch(ctx, obj, client.MergeFrom(base))
}

func main() {
	namespace := flag.String("namespace", "default", "namespace to watch")
	workers := flag.Int("workers", 4, "MaxConcurrentReconciles")
	statusJSON := flag.String("status_patch_json", `{"bench":{"done":true}}`, "merged into .status")
	subresource := flag.Bool("status_subresource", false, "patch the status subresource")
	flag.Parse()
	ctrl.SetLogger(zap.New())
	log := ctrl.Log.WithName("crpeer")

	var status map[string]any
	if err := json.Unmarshal([]byte(*statusJSON), &status); err != nil {
		log.Error(err, "bad --status_patch_json")
		os.Exit(2)
	}
	// GetConfig leaves the client-side rate limit off (QPS -1), relying on the
	// API server's priority and fairness.
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Cache: cache.Options{DefaultNamespaces: map[string]cache.Config{*namespace: {}}},
		// Reads come from the informer cache, as they do for typed objects;
		// unstructured ones would otherwise be read live from the API server.
		Client:                 client.Options{Cache: &client.CacheOptions{Unstructured: true}},
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		LeaderElection:         false,
	})
	if err != nil {
		log.Error(err, "manager")
		os.Exit(1)
	}
	watched := &unstructured.Unstructured{}
	watched.SetGroupVersionKind(widgetGVK)
	err = ctrl.NewControllerManagedBy(mgr).
		For(watched).
		WithOptions(controller.Options{MaxConcurrentReconciles: *workers}).
		Complete(&reconciler{Client: mgr.GetClient(), status: status, subresource: *subresource})
	if err != nil {
		log.Error(err, "controller")
		os.Exit(1)
	}
	log.Info("starting", "namespace", *namespace, "workers", *workers)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "manager stopped")
		os.Exit(1)
	}
}
