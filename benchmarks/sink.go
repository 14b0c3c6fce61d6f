// A server that is never the bottleneck, in Go: what benchmarks/sink.py does (just enough of
// GitFlic's release API for one upload, whose body it reads and throws away), at rates Python's
// sink cannot read at. benchmarks/run.py builds and uses it when `go` is there.
//
// The upload's multipart body is read as a stream, part by part, as GitFlic's server reads it: a
// file's size is what arrived between its part header and the next boundary. It hashes nothing:
// the SHA-256 it reports for a file is the one the benchmark passed as -sha256 NAME=HEX.
//
//	go build -o /tmp/sink benchmarks/sink.go && /tmp/sink -sha256 big.bin=ab12...  # "sink at http://127.0.0.1:PORT"
package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
)

var releasePath = regexp.MustCompile(`^/rest-api/project/[^/]+/[^/]+/release(?:/([^/?]+)(/file)?)?$`)

type digests map[string]string

func (d digests) String() string { return fmt.Sprint(map[string]string(d)) }

func (d digests) Set(value string) error {
	name, hex, found := strings.Cut(value, "=")
	if !found {
		return fmt.Errorf("want NAME=HEX, got %q", value)
	}
	d[name] = hex
	return nil
}

type sink struct {
	digests  digests
	lock     sync.Mutex
	releases []map[string]any
}

func newID() string {
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		panic(err)
	}
	return hex.EncodeToString(raw)
}

func answer(w http.ResponseWriter, status int, body any) {
	data, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.WriteHeader(status)
	w.Write(data)
}

func (s *sink) release(id string) map[string]any {
	for _, release := range s.releases {
		if release["id"] == id {
			return release
		}
	}
	return nil
}

// store reads every part of an upload, keeping only each file's name and size.
func (s *sink) store(w http.ResponseWriter, r *http.Request, id string) {
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		answer(w, 400, map[string]string{"title": "Bad Request", "detail": err.Error()})
		return
	}
	reader := multipart.NewReader(r.Body, params["boundary"])
	buffer := make([]byte, 1<<20)
	var stored []map[string]any
	for {
		part, err := reader.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			answer(w, 400, map[string]string{"title": "Bad Request", "detail": err.Error()})
			return
		}
		size, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{part}, buffer)
		if err != nil {
			answer(w, 400, map[string]string{"title": "Bad Request", "detail": err.Error()})
			return
		}
		if part.FileName() == "" {
			continue
		}
		file := map[string]any{"uuid": newID(), "name": part.FileName(), "size": size, "link": ""}
		if digest, known := s.digests[part.FileName()]; known {
			file["hashSha256"] = digest
		}
		stored = append(stored, file)
	}
	s.lock.Lock()
	defer s.lock.Unlock()
	release := s.release(id)
	if release == nil {
		answer(w, 404, map[string]string{"title": "Not Found", "detail": id})
		return
	}
	for _, file := range stored {
		release["attachmentFiles"] = append(release["attachmentFiles"].([]map[string]any), file)
	}
	answer(w, 200, release)
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	match := releasePath.FindStringSubmatch(r.URL.Path)
	if match == nil {
		io.Copy(io.Discard, r.Body)
		answer(w, 404, map[string]string{"title": "Not Found", "detail": r.URL.Path})
		return
	}
	if match[2] != "" {
		s.store(w, r, match[1])
		return
	}
	var body map[string]any
	json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body)
	s.lock.Lock()
	defer s.lock.Unlock()
	switch {
	case r.Method == http.MethodPost:
		tag, _ := body["tagName"].(string)
		title, _ := body["title"].(string)
		release := map[string]any{
			"id": newID(), "tagName": tag, "title": title, "description": "", "preRelease": false,
			"attachmentFiles": []map[string]any{},
		}
		s.releases = append(s.releases, release)
		answer(w, 200, release)
	case match[1] != "":
		if release := s.release(match[1]); release != nil {
			answer(w, 200, release)
		} else {
			answer(w, 404, map[string]string{"title": "Not Found", "detail": match[1]})
		}
	default:
		answer(w, 200, map[string]any{
			"_embedded": map[string]any{"releaseTagModelList": s.releases},
			"page":      map[string]any{"size": 100, "totalElements": len(s.releases), "totalPages": 1, "number": 0},
		})
	}
}

func main() {
	port := flag.Int("port", 0, "the port on 127.0.0.1 (0: any free one)")
	known := digests{}
	flag.Var(known, "sha256", "NAME=HEX: the SHA-256 to report for a file of that name (repeatable)")
	flag.Parse()
	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("sink at http://%s\n", listener.Addr())
	os.Stdout.Sync()
	server := &http.Server{Handler: &sink{digests: known, releases: []map[string]any{}}}
	if err := server.Serve(listener); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
