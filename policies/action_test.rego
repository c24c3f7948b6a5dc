package action_test

import data.action

alert(severity, new_ips, attrs) := {
	"id": "2e9100af146bd000b464724feca45293",
	"title": "AWS Root Credentials Change",
	"severity": severity,
	"attrs": attrs,
	"data": {"context_diff": {"source": {"ip": new_ips}}},
}

env := {
	"INTEL_URL": "http://intel.test",
	"WEBHOOK_URL": "http://hooks.test/alert",
	"PAGE_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:page",
	"TRUSTED_ORGS": "AS64500 Example Scanner, AS64501 Our Corp",
}

ids(runs) := {r.id | some r in runs}

lookup_called(ip) := {"id": sprintf("lookup_ip_%s", [ip]), "uses": "http.fetch", "status": "succeeded"}

test_round_0_looks_up_only_new_ips if {
	runs := action.run with input as {"alert": alert("high", ["203.0.113.9"], []), "env": env, "seq": 0, "called": []}
	ids(runs) == {"lookup_ip_203.0.113.9"}
	some r in runs
	r.args.url == "http://intel.test/203.0.113.9/json"
	r.force == true
}

test_no_new_ips_goes_straight_to_notify if {
	runs := action.run with input as {"alert": alert("high", [], []), "env": env, "seq": 0, "called": []}
	ids(runs) == {"notify_webhook"}
}

test_round_1_notifies_with_what_the_lookup_found if {
	attrs := [{"key": "country_203.0.113.9", "value": "NL"}]
	runs := action.run with input as {
		"alert": alert("high", ["203.0.113.9"], attrs), "env": env, "seq": 1,
		"called": [lookup_called("203.0.113.9")],
	}
	ids(runs) == {"lookup_ip_203.0.113.9", "notify_webhook"}
	some r in runs
	r.id == "notify_webhook"
	r.args.data.countries == {"country_203.0.113.9": "NL"}
}

test_critical_pages_after_the_lookups if {
	runs := action.run with input as {
		"alert": alert("critical", ["203.0.113.9"], []), "env": env, "seq": 1,
		"called": [lookup_called("203.0.113.9")],
	}
	"page_oncall" in ids(runs)
}

test_trusted_org_closes_as_benign_and_aborts if {
	attrs := [{"key": "org_203.0.113.9", "value": "AS64500 Example Scanner"}]
	runs := action.run with input as {
		"alert": alert("critical", ["203.0.113.9"], attrs), "env": env, "seq": 1,
		"called": [lookup_called("203.0.113.9")],
	}
	ids(runs) == {"lookup_ip_203.0.113.9", "close_benign"}
	some r in runs
	r.id == "close_benign"
	r.abort == true
}

test_nothing_is_sent_without_a_webhook if {
	runs := action.run with input as {"alert": alert("high", [], []), "env": {}, "seq": 0, "called": []}
	count(runs) == 0
}

test_slack_text_escapes_what_comes_from_the_alert if {
	hostile := alert("high", ["203.0.113.9"], [])
	runs := action.run with input as {
		"alert": object.union(hostile, {"title": "Root login <!channel> <https://evil.example|Reset MFA>"}),
		"env": object.union(env, {"SLACK_WEBHOOK_SECRET": "alert-responder/slack"}), "seq": 1,
		"called": [lookup_called("203.0.113.9")],
	}
	some r in runs
	r.id == "notify_slack"
	r.args.text == "*New source IPs* on _Root login &lt;!channel&gt; &lt;https://evil.example|Reset MFA&gt;_: 203.0.113.9"
}
