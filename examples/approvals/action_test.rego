package action_test

import data.action

high := {"title": "Root login", "severity": "high", "attrs": []}

asked(result) := [{"id": "ask-isolate", "uses": "approval.request", "status": "succeeded", "result": result, "seq": 0}]

test_asks_for_a_high_alert if {
	runs := action.run with input as {"alert": high, "seq": 0, "called": [], "env": {}}
	some r in runs
	r.id == "ask-isolate"
	r.args.timeout_seconds == 1800
}

test_isolates_when_approved if {
	called := asked({"answer": "approve", "user": "U0LEAD", "answered_at": "2026-11-29T22:00:00Z"})
	runs := action.run with input as {"alert": high, "seq": 1, "called": called, "env": {}}
	{r.id | some r in runs} == {"isolate"}
}

test_escalates_on_timeout if {
	runs := action.run with input as {"alert": high, "seq": 1, "called": asked({"answer": "timeout"}), "env": {}}
	{r.id | some r in runs} == {"escalate"}
}

test_does_nothing_when_denied if {
	called := asked({"answer": "deny", "user": "U0LEAD", "answered_at": "2026-11-29T22:00:00Z"})
	runs := action.run with input as {"alert": high, "seq": 1, "called": called, "env": {}}
	count(runs) == 0
}
