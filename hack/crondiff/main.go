// Command crondiff computes CronJob slot times the way Kubernetes does, so that
// cronwarden's pure-Python schedule module can be checked against the real thing.
//
// It reads a JSON list of cases on stdin:
//
//	[{"id": "...", "expression": "0 2 * * *", "timeZone": "Europe/Berlin",
//	  "instant": "2026-03-28T22:30:00Z", "count": 4}, ...]
//
// and writes, per case and in the same order, either
//
//	{"id": "...", "error": "<message>", "errorField": "schedule" | "timeZone"}
//
// or the next `count` slots strictly after `instant`, as RFC 3339 UTC strings:
//
//	{"id": "...", "slots": ["2026-03-30T00:00:00Z", ...]}
//
// A slot of null means robfig's Next returned the zero time (the schedule does not
// fire within five years); nothing follows it.
//
// What it mirrors (Kubernetes v1.36, robfig/cron v3.0.1):
//   - the API server's validation of spec.schedule (cron.ParseStandard with panic
//     recovery, and no "TZ" anywhere in a new schedule) and of spec.timeZone
//     (pkg/apis/batch/validation: validateScheduleFormat, validateTimeZone);
//   - the controller's formatSchedule ("TZ=<timeZone> <schedule>") and Schedule.Next;
//   - the controller's tz database: the system one, else Go's embedded copy.
//
// A schedule without timeZone runs in the controller's local zone; here that is UTC.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // as kube-controller-manager does, for hosts without a tz database

	"github.com/robfig/cron/v3"
)

type testCase struct {
	ID         string  `json:"id"`
	Expression string  `json:"expression"`
	TimeZone   *string `json:"timeZone"`
	Instant    string  `json:"instant"`
	Count      int     `json:"count"`
}

type result struct {
	ID         string    `json:"id"`
	Error      string    `json:"error,omitempty"`
	ErrorField string    `json:"errorField,omitempty"`
	Slots      []*string `json:"slots,omitempty"`
}

// The character rule for one path component of a time zone name, as the API server has it.
var validTimeZoneCharacters = regexp.MustCompile(`^[A-Za-z\.\-_0-9+]{1,14}$`)

func parseStandard(spec string) (sched cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("invalid schedule format: %v", r)
		}
	}()
	return cron.ParseStandard(spec)
}

func validateSchedule(schedule string) error {
	if schedule == "" {
		return fmt.Errorf("required value")
	}
	if _, err := parseStandard(schedule); err != nil {
		return err
	}
	if strings.Contains(schedule, "TZ") {
		return fmt.Errorf("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
	}
	return nil
}

func validateTimeZone(timeZone *string) error {
	if timeZone == nil {
		return nil
	}
	if *timeZone == "" {
		return fmt.Errorf("timeZone must be nil or non-empty string")
	}
	for _, part := range strings.Split(*timeZone, "/") {
		if part == "." || part == ".." || strings.HasPrefix(part, "-") ||
			!validTimeZoneCharacters.MatchString(part) {
			return fmt.Errorf("unknown time zone %s", *timeZone)
		}
	}
	if strings.EqualFold(*timeZone, "Local") {
		return fmt.Errorf("timeZone must be an explicit time zone")
	}
	if _, err := time.LoadLocation(*timeZone); err != nil {
		return err
	}
	return nil
}

func run(c testCase) result {
	if err := validateSchedule(c.Expression); err != nil {
		return result{ID: c.ID, Error: err.Error(), ErrorField: "schedule"}
	}
	if err := validateTimeZone(c.TimeZone); err != nil {
		return result{ID: c.ID, Error: err.Error(), ErrorField: "timeZone"}
	}
	spec := c.Expression
	if c.TimeZone != nil {
		spec = fmt.Sprintf("TZ=%s %s", *c.TimeZone, c.Expression)
	}
	sched, err := parseStandard(spec)
	if err != nil {
		// Not expected: validation accepted the schedule on its own.
		return result{ID: c.ID, Error: "controller: " + err.Error(), ErrorField: "schedule"}
	}
	t, err := time.Parse(time.RFC3339Nano, c.Instant)
	if err != nil {
		fmt.Fprintf(os.Stderr, "crondiff: case %s: bad instant: %v\n", c.ID, err)
		os.Exit(2)
	}
	slots := []*string{}
	for i := 0; i < c.Count; i++ {
		t = sched.Next(t)
		if t.IsZero() {
			slots = append(slots, nil)
			break
		}
		s := t.UTC().Format(time.RFC3339)
		slots = append(slots, &s)
	}
	return result{ID: c.ID, Slots: slots}
}

func main() {
	// The controller's local zone decides schedules without timeZone; pin it.
	time.Local = time.UTC

	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		fmt.Fprintf(os.Stderr, "crondiff: reading cases: %v\n", err)
		os.Exit(2)
	}
	results := make([]result, 0, len(cases))
	for _, c := range cases {
		results = append(results, run(c))
	}
	out, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		fmt.Fprintf(os.Stderr, "crondiff: %v\n", err)
		os.Exit(2)
	}
	fmt.Println(string(out))
}
