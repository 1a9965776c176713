// Command kstatus prints what kstatus (sigs.k8s.io/cli-utils/pkg/kstatus/status,
// the library behind Flux's health checks and kpt/cli-utils' apply waiting) says
// about Kubernetes objects.
//
// It reads JSON from the file named by its only argument, or from stdin when there
// is none (or it is "-"): one object, or a List (`kubectl get ... -o json`), and
// writes a JSON array with one result per object, in order:
//
//	[{"apiVersion": "cronwarden.io/v1alpha1", "kind": "ScheduledTask",
//	  "namespace": "demo", "name": "heartbeat",
//	  "status": "Current", "message": "Resource is Ready"}, ...]
//
// status is one of InProgress, Failed, Current, Terminating, Unknown; a result also
// has "error" when status.Compute returned one (status is then "Unknown"). The exit
// status is 0 whenever the input parsed, whatever the verdicts; 1 otherwise.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

type result struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	Message    string `json:"message"`
	Error      string `json:"error,omitempty"`
}

// objects returns the object, or the items of a List, in order.
func objects(data []byte) ([]*unstructured.Unstructured, error) {
	// As client-go decodes objects: whole numbers as int64 (kstatus reads
	// metadata.generation and status.observedGeneration as int64).
	var obj map[string]interface{}
	if err := utiljson.Unmarshal(data, &obj); err != nil {
		return nil, fmt.Errorf("input is not a JSON object: %w", err)
	}
	u := &unstructured.Unstructured{Object: obj}
	if u.IsList() {
		list, err := u.ToList()
		if err != nil {
			return nil, fmt.Errorf("reading the List: %w", err)
		}
		out := make([]*unstructured.Unstructured, 0, len(list.Items))
		for i := range list.Items {
			out = append(out, &list.Items[i])
		}
		return out, nil
	}
	if u.GetKind() == "" || u.GetName() == "" {
		return nil, fmt.Errorf("input has no kind or metadata.name: not a Kubernetes object")
	}
	return []*unstructured.Unstructured{u}, nil
}

func compute(u *unstructured.Unstructured) result {
	r := result{
		APIVersion: u.GetAPIVersion(),
		Kind:       u.GetKind(),
		Namespace:  u.GetNamespace(),
		Name:       u.GetName(),
	}
	res, err := status.Compute(u)
	if err != nil {
		r.Status = string(status.UnknownStatus)
		r.Error = err.Error()
		return r
	}
	r.Status = string(res.Status)
	r.Message = res.Message
	return r
}

func run(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) > 1 {
		return fmt.Errorf("usage: kstatus [FILE|-]  (JSON object or List; stdin by default)")
	}
	in := stdin
	if len(args) == 1 && args[0] != "-" {
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	data, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	if strings.TrimSpace(string(data)) == "" {
		return fmt.Errorf("no input")
	}
	objs, err := objects(data)
	if err != nil {
		return err
	}
	results := make([]result, 0, len(objs))
	for _, u := range objs {
		results = append(results, compute(u))
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(results)
}

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}
