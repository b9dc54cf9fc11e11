// rtvalidate runs the bundle checks of opencontainers/runtime-tools' validate
// library (what `oci-runtime-tool validate` runs) on bundles and prints, per
// bundle, one JSON line with every problem found and its RFC 2119 level.
//
// The library's CheckJSONSchema is not run: it downloads the schema from
// GitHub for the config's ociVersion, which an offline build cannot do (and
// there is no 1.3.0 schema it would accept).  Every other check of CheckAll
// runs, in CheckAll's order, with the platform "linux" and without
// host-specific checks (unless -host-specific).
//
// Built in GOPATH mode against Debian's golang-github-opencontainers-
// runtime-tools-dev (see conformance/conformance.mk, target rtvalidate).
//
// Usage: rtvalidate [-host-specific] BUNDLE...
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io/ioutil"
	"os"

	"github.com/hashicorp/go-multierror"
	rspec "github.com/opencontainers/runtime-spec/specs-go"
	rfc2119 "github.com/opencontainers/runtime-tools/error"
	"github.com/opencontainers/runtime-tools/specerror"
	"github.com/opencontainers/runtime-tools/validate"
	"github.com/sirupsen/logrus"
)

// Problem is one error a check returned.
type Problem struct {
	Check string `json:"check"`
	// Level is the RFC 2119 level of a spec violation ("MUST", "SHOULD",
	// ...), or "" for an error that is not tied to a spec clause, which
	// oci-runtime-tool always treats as fatal.
	Level   string `json:"level"`
	Message string `json:"message"`
}

// Report is the verdict on one bundle.
type Report struct {
	Bundle string `json:"bundle"`
	// LoadError: the bundle could not be read or its config.json did not
	// decode into the library's (spec 1.0.2) Go types.
	LoadError string    `json:"load_error,omitempty"`
	Problems  []Problem `json:"problems"`
	// SpecVersion is the spec version the library's types implement.
	SpecVersion string `json:"spec_version"`
}

type check struct {
	name string
	run  func(v *validate.Validator) error
}

// CheckAll's list without CheckJSONSchema.  CheckPlatform first: it may turn
// host-specific checks off.
var checks = []check{
	{"CheckPlatform", (*validate.Validator).CheckPlatform},
	{"CheckRoot", (*validate.Validator).CheckRoot},
	{"CheckMandatoryFields", (*validate.Validator).CheckMandatoryFields},
	{"CheckSemVer", (*validate.Validator).CheckSemVer},
	{"CheckMounts", (*validate.Validator).CheckMounts},
	{"CheckProcess", (*validate.Validator).CheckProcess},
	{"CheckLinux", (*validate.Validator).CheckLinux},
	{"CheckAnnotations", (*validate.Validator).CheckAnnotations},
	{"CheckHooks", (*validate.Validator).CheckHooks},
}

func flatten(name string, err error) []Problem {
	if err == nil {
		return nil
	}
	var errs []error
	if merr, ok := err.(*multierror.Error); ok {
		errs = merr.Errors
	} else {
		errs = []error{err}
	}
	var out []Problem
	for _, e := range errs {
		if inner, ok := e.(*multierror.Error); ok {
			out = append(out, flatten(name, inner)...)
			continue
		}
		p := Problem{Check: name, Message: e.Error()}
		if se, ok := e.(*specerror.Error); ok {
			p.Level = se.Err.Level.String()
			p.Message = se.Err.Err.Error()
		} else if re, ok := e.(*rfc2119.Error); ok {
			p.Level = re.Level.String()
			p.Message = re.Err.Error()
		}
		out = append(out, p)
	}
	return out
}

func runCheck(c check, v *validate.Validator) (problems []Problem) {
	defer func() {
		// Some checks dereference optional fields (root, process) without
		// testing them first; a panic is reported as that check's error.
		if r := recover(); r != nil {
			problems = append(problems, Problem{Check: c.name, Message: fmt.Sprintf("panic: %v", r)})
		}
	}()
	return flatten(c.name, c.run(v))
}

func judge(bundle string, hostSpecific bool) Report {
	rep := Report{Bundle: bundle, Problems: []Problem{}, SpecVersion: rspec.Version}
	v, err := validate.NewValidatorFromPath(bundle, hostSpecific, "linux")
	if err != nil {
		rep.LoadError = err.Error()
		return rep
	}
	for _, c := range checks {
		rep.Problems = append(rep.Problems, runCheck(c, &v)...)
	}
	return rep
}

func main() {
	hostSpecific := flag.Bool("host-specific", false, "also run the library's host-specific checks")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: rtvalidate [-host-specific] BUNDLE...")
		os.Exit(2)
	}
	logrus.SetOutput(ioutil.Discard) // warnings are not verdicts
	enc := json.NewEncoder(os.Stdout)
	for _, bundle := range flag.Args() {
		if err := enc.Encode(judge(bundle, *hostSpecific)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
