package controlplane

import (
	"context"
	"fmt"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/skiff-dev/skiff/config"
	"github.com/skiff-dev/skiff/internal/scheme"
)

// installNodeRestriction installs what restricts node identities (the
// agent's ClusterRole, its binding to group system:skiff-nodes, the
// skiff-node-restriction admission policy and its binding), and waits until the API server has type-checked the
// policy: a CEL mistake fails here, not silently at admission.
func installNodeRestriction(ctx context.Context, cfg *rest.Config) error {
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return err
	}
	objs, err := config.NodeRestriction()
	if err != nil {
		return err
	}
	for _, obj := range []client.Object{objs.AgentRole, objs.NodesBinding, objs.Policy, objs.PolicyBinding} {
		if err := createOrReplace(ctx, c, obj); err != nil {
			return fmt.Errorf("installing the node restriction: %w", err)
		}
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		p := &admissionregistrationv1.ValidatingAdmissionPolicy{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(objs.Policy), p); err != nil {
			return false, err
		}
		if p.Status.ObservedGeneration != p.Generation || p.Status.TypeChecking == nil {
			last = "not type-checked yet"
			return false, nil
		}
		if w := p.Status.TypeChecking.ExpressionWarnings; len(w) > 0 {
			var msgs []string
			for _, x := range w {
				msgs = append(msgs, x.FieldRef+": "+x.Warning)
			}
			return false, fmt.Errorf("policy %s does not type-check: %s", p.Name, strings.Join(msgs, "; "))
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the node restriction policy (%s): %w", last, err)
	}
	return nil
}

// createOrReplace creates obj, or replaces the object of that name with it.
func createOrReplace(ctx context.Context, c client.Client, obj client.Object) error {
	want := obj.DeepCopyObject().(client.Object)
	err := c.Create(ctx, want)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	cur := obj.DeepCopyObject().(client.Object)
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), cur); err != nil {
		return err
	}
	want = obj.DeepCopyObject().(client.Object)
	want.SetResourceVersion(cur.GetResourceVersion())
	return c.Update(ctx, want)
}
