# Alert policy for Matano alert changes (schema "matano").
#
# `input` is the change exactly as Matano publishes it: `updated_alert`,
# `incoming_rule_matches_context`, `context_diff` and
# `destination_to_alert_info`. Each element of `alert` becomes one alert for
# the action policy.
package alert.matano

# Service accounts whose activity is expected: changes caused only by them
# are not responded to.
service_accounts := {"svc-backup", "terraform-ci"}

# Users of the rule matches that caused this change.
change_users := {u | some u in input.incoming_rule_matches_context.user.name}

# Source IPs this change added to the alert: never seen on it before.
new_source_ips := {ip | some ip in input.context_diff.source.ip}

escalate if input.updated_alert.severity in {"high", "critical"}

suppressed if {
	count(change_users) > 0
	every u in change_users {
		u in service_accounts
	}
}

# Respond to high and critical alerts, and to any change that brings new
# source IPs, unless only service accounts are involved.
respond if escalate

respond if count(new_source_ips) > 0

alert contains {
	"title": input.updated_alert.title,
	"description": object.get(input.updated_alert, "runbook", ""),
	"source": "matano",
	"severity": input.updated_alert.severity,
	"namespace": "matano",
	"attrs": [
		{"key": "matano_alert_id", "value": input.updated_alert.id},
		{"key": "update_count", "value": input.updated_alert.update_count},
		{"key": "escalate", "value": escalate_value},
		{"key": "new_source_ips", "value": sort(new_source_ips)},
		{"key": "users", "value": sort(change_users)},
	],
	"refs": [{"url": "https://www.matano.dev/docs/detections/alerting", "title": "Matano alerting"}],
} if {
	respond
	not suppressed
}

default escalate_value := false

escalate_value if escalate
