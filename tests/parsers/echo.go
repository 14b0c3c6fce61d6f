// A Go net/http server that reads multipart uploads as SourceCraft's API very likely
// does, and Gitea's does (ParseMultipartForm, Part.FileName, and the name in the query,
// read with r.URL.Query()), and answers with what it read, one value a line,
// "file FIELD HEX", "field NAME HEX" or "query name HEX", the value as hex so nothing is
// lost on the way back. Used by tests/test_real_parsers.py; binds 127.0.0.1 only.
package main

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(listener.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	http.Serve(listener, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		multipart := r.Header.Get("Content-Type") != "" // without a body, the query alone is read
		if multipart {
			if err := r.ParseMultipartForm(1 << 20); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain")
		if values, ok := r.URL.Query()["name"]; ok {
			fmt.Fprintf(w, "query name %s\n", hex.EncodeToString([]byte(values[0])))
		}
		if !multipart {
			return
		}
		for field, headers := range r.MultipartForm.File {
			for _, header := range headers {
				fmt.Fprintf(w, "file %s %s\n", field, hex.EncodeToString([]byte(header.Filename)))
			}
		}
		for name, values := range r.MultipartForm.Value {
			fmt.Fprintf(w, "field %s %s\n", name, hex.EncodeToString([]byte(values[0])))
		}
	}))
}
