// Command noopserver is the do-nothing baseline outside Node for the benchmarks (e2e/perf): the same
// answers as e2e/perf/noop-server.ts. As a scheduler extender, POST /filter passes every node it is
// given and POST /prioritize scores them all 0; POST /mutate… admits every AdmissionReview unchanged.
// Plain HTTP, or HTTPS when -cert and -key are given (HTTP/1.1 only unless -http2, as peerpods serves).
//
// Usage: noopserver -addr 127.0.0.1:PORT [-cert FILE -key FILE] [-http2]
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// args holds what the answers need from an ExtenderArgs or an AdmissionReview; the pod is read and dropped.
type args struct {
	Pod       json.RawMessage `json:"Pod"`
	Nodes     json.RawMessage `json:"Nodes"`
	NodeNames *[]string       `json:"NodeNames"`
	Request   *struct {
		UID string `json:"uid"`
	} `json:"request"`
}

type nodeList struct {
	Items []struct {
		Metadata struct {
			Name string `json:"name"`
		} `json:"metadata"`
	} `json:"items"`
}

type hostPriority struct {
	Host  string
	Score int64
}

func (a *args) names() ([]string, error) {
	if a.NodeNames != nil {
		return *a.NodeNames, nil
	}
	var list nodeList
	if len(a.Nodes) > 0 && string(a.Nodes) != "null" {
		if err := json.Unmarshal(a.Nodes, &list); err != nil {
			return nil, err
		}
	}
	names := make([]string, len(list.Items))
	for i, item := range list.Items {
		names[i] = item.Metadata.Name
	}
	return names, nil
}

func answer(path string, a *args) (any, error) {
	switch {
	case strings.HasPrefix(path, "/mutate"):
		uid := ""
		if a.Request != nil {
			uid = a.Request.UID
		}
		return map[string]any{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": map[string]any{"uid": uid, "allowed": true}}, nil
	case path == "/prioritize":
		names, err := a.names()
		if err != nil {
			return nil, err
		}
		scores := make([]hostPriority, len(names))
		for i, name := range names {
			scores[i] = hostPriority{Host: name}
		}
		return scores, nil
	default:
		nodes := a.Nodes
		if len(nodes) == 0 {
			nodes = json.RawMessage("null")
		}
		return map[string]any{"Nodes": nodes, "NodeNames": a.NodeNames, "FailedNodes": map[string]string{}, "FailedAndUnresolvableNodes": map[string]string{}, "Error": ""}, nil
	}
}

func handle(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	var a args
	err := json.NewDecoder(r.Body).Decode(&a)
	var body any
	if err == nil {
		body, err = answer(r.URL.Path, &a)
	}
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		body = map[string]string{"Error": err.Error()}
	}
	if err := json.NewEncoder(w).Encode(body); err != nil {
		log.Printf("writing the answer: %v", err)
	}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on")
	cert := flag.String("cert", "", "serving certificate (PEM); with -key, serve HTTPS")
	key := flag.String("key", "", "serving key (PEM)")
	http2 := flag.Bool("http2", false, "offer HTTP/2 over TLS (peerpods serves HTTP/1.1 only)")
	flag.Parse()

	server := &http.Server{Handler: http.HandlerFunc(handle), IdleTimeout: 65 * time.Second, ReadHeaderTimeout: 10 * time.Second}
	if !*http2 {
		server.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	scheme := "http"
	if *cert != "" && *key != "" {
		scheme = "https"
	}
	fmt.Printf("noop server listening on %s://%s\n", scheme, listener.Addr())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-stop
		_ = server.Close()
	}()
	if scheme == "https" {
		err = server.ServeTLS(listener, *cert, *key)
	} else {
		err = server.Serve(listener)
	}
	if err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
