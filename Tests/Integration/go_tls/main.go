// Go TLS peers for test_tls_go.py, built with Debian's golang-go (crypto/tls, net/http).
//
//	server CERT KEY PORT              serves HTTPS on 127.0.0.1:PORT until killed; prints "ready" once listening.
//	                                  Every response echoes the request:
//	                                  "<METHOD> <PATH> secret=<X-Secret> len=<body length> sum=<byte sum>".
//	client PORT SECRET PATH COUNT BODY_BYTES [wait]
//	                                  COUNT requests on one keep-alive connection: GET PATH?i=N, then one POST PATH
//	                                  with BODY_BYTES bytes ("0123456789" repeated) when BODY_BYTES > 0; prints each
//	                                  response. With "wait", prints "started" and waits for a line on stdin first.
package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
)

func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	sum := 0
	for _, b := range body {
		sum += int(b)
	}
	text := fmt.Sprintf("%s %s secret=%s len=%d sum=%d", r.Method, r.URL.RequestURI(), r.Header.Get("X-Secret"), len(body), sum)
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte(text))
}

func body(size int) []byte {
	return bytes.Repeat([]byte("0123456789"), size/10+1)[:size]
}

func client(args []string) error {
	port, secret, path := args[0], args[1], args[2]
	count, _ := strconv.Atoi(args[3])
	size, _ := strconv.Atoi(args[4])
	if len(args) > 5 && args[5] == "wait" {
		fmt.Println("started")
		bufio.NewReader(os.Stdin).ReadString('\n')
	}
	transport := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, MaxConnsPerHost: 1,
		ForceAttemptHTTP2: false, TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	c := &http.Client{Transport: transport}
	base := "https://127.0.0.1:" + port + path
	do := func(method, url string, payload []byte) error {
		request, err := http.NewRequest(method, url, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		request.Header.Set("X-Secret", secret)
		response, err := c.Do(request)
		if err != nil {
			return err
		}
		defer response.Body.Close()
		text, err := io.ReadAll(response.Body)
		fmt.Println(string(text))
		return err
	}
	for i := 0; i < count; i++ {
		if err := do("GET", fmt.Sprintf("%s?i=%d", base, i), nil); err != nil {
			return err
		}
	}
	if size > 0 {
		return do("POST", base, body(size))
	}
	return nil
}

func main() {
	switch os.Args[1] {
	case "server":
		server := &http.Server{Addr: "127.0.0.1:" + os.Args[4], Handler: http.HandlerFunc(echo),
			TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){}}
		listener, err := tls.Listen("tcp", server.Addr, &tls.Config{Certificates: []tls.Certificate{mustLoad(os.Args[2], os.Args[3])}})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("ready")
		server.Serve(listener)
	case "client":
		if err := client(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

func mustLoad(cert, key string) tls.Certificate {
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return pair
}
