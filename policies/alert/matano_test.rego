package alert.matano_test

import data.alert.matano

# A Matano change: `severity`, the users of the rule matches, and the source
# IPs the change added.
change(severity, users, new_ips) := {
	"updated_alert": {
		"id": "61d3ac78-cedd-434e-b407-ae0b330e1d4a",
		"title": "AWS Root Credentials Change",
		"severity": severity,
		"runbook": "Check the AWS root account activity",
		"update_count": 2,
	},
	"incoming_rule_matches_context": {"user": {"name": users}},
	"context_diff": {"source": {"ip": new_ips}},
}

attr(alert, key) := [a.value | some a in alert.attrs; a.key == key][0]

test_high_severity_escalates if {
	alerts := matano.alert with input as change("high", ["John Doe"], [])
	count(alerts) == 1
	some a in alerts
	a.severity == "high"
	attr(a, "escalate") == true
}

test_critical_severity_escalates if {
	count(matano.alert) == 1 with input as change("critical", ["John Doe"], [])
}

test_medium_without_new_values_is_ignored if {
	count(matano.alert) == 0 with input as change("medium", ["John Doe"], [])
}

test_new_source_ip_makes_an_alert_at_any_severity if {
	alerts := matano.alert with input as change("low", ["John Doe"], ["203.0.113.9"])
	some a in alerts
	attr(a, "escalate") == false
	attr(a, "new_source_ips") == ["203.0.113.9"]
}

test_service_accounts_are_suppressed if {
	count(matano.alert) == 0 with input as change("critical", ["svc-backup", "terraform-ci"], ["203.0.113.9"])
}

test_a_person_among_service_accounts_is_not_suppressed if {
	count(matano.alert) == 1 with input as change("critical", ["svc-backup", "John Doe"], [])
}
