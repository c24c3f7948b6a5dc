# Action policy: what to do about an alert, in rounds.
#
#   round 0  look up every never-seen source IP (http.fetch, force: a failed
#            lookup does not stop the response)
#   round 1  when every lookup has been called:
#            - an IP owned by a trusted org  -> close_benign, abort
#            - otherwise                      -> notify_webhook, and for
#              critical alerts page_oncall (sns.publish)
#
# Targets come from `input.env` (allow-listed with POLICY_ENV, or
# `run --env KEY=VALUE`): INTEL_URL, WEBHOOK_URL, PAGE_TOPIC_ARN,
# SLACK_WEBHOOK_SECRET (a Secrets Manager secret holding a Slack incoming
# webhook URL), TRUSTED_ORGS (comma-separated org names as the intel API
# reports them).
package action

# escape.slack / escape.markdown: alert content made literal text (the
# module is built in; OPA needs a copy of it).
import data.escape

intel_base := object.get(input.env, "INTEL_URL", "https://ipinfo.io")

new_source_ips := {ip | some ip in input.alert.data.context_diff.source.ip}

lookup_id(ip) := sprintf("lookup_ip_%s", [ip])

# Round 0: enrichment.
run contains {
	"id": lookup_id(ip),
	"uses": "http.fetch",
	"args": {"url": sprintf("%s/%s/json", [intel_base, ip]), "timeout_ms": 3000},
	"force": true,
	"commit": [
		{"key": sprintf("country_%s", [ip]), "path": "$.body.country"},
		{"key": sprintf("org_%s", [ip]), "path": "$.body.org"},
	],
} if {
	some ip in new_source_ips
}

called_ids := {c.id | some c in input.called}

lookups_done if {
	every ip in new_source_ips {
		lookup_id(ip) in called_ids
	}
}

# What the lookups found, from the attributes they committed.
countries := {a.key: a.value | some a in input.alert.attrs; startswith(a.key, "country_")}

orgs := {a.value | some a in input.alert.attrs; startswith(a.key, "org_")}

trusted_orgs := {trim_space(o) | some o in split(object.get(input.env, "TRUSTED_ORGS", ""), ","); trim_space(o) != ""}

benign if {
	some org in orgs
	org in trusted_orgs
}

# Round 1, benign: say so and stop the workflow.
run contains {
	"id": "close_benign",
	"uses": "webhook.post",
	"args": {
		"url": input.env.WEBHOOK_URL,
		"data": {"verdict": "benign", "orgs": orgs},
	},
	"abort": true,
} if {
	lookups_done
	benign
	input.env.WEBHOOK_URL
}

# Round 1, otherwise: act on the enrichment.
run contains {
	"id": "notify_webhook",
	"uses": "webhook.post",
	"args": {
		"url": input.env.WEBHOOK_URL,
		"data": {"countries": countries, "severity": input.alert.severity},
	},
} if {
	lookups_done
	not benign
	input.env.WEBHOOK_URL
}

run contains {
	"id": "page_oncall",
	"uses": "sns.publish",
	"args": {
		"topic_arn": input.env.PAGE_TOPIC_ARN,
		"subject": sprintf("[%s] %s", [input.alert.severity, input.alert.title]),
		"message": {"alert_id": input.alert.id, "title": input.alert.title, "countries": countries},
	},
} if {
	lookups_done
	not benign
	input.alert.severity == "critical"
	input.env.PAGE_TOPIC_ARN
}

# Round 1, otherwise, to Slack too. The text is this policy's own mrkdwn;
# what it takes from the alert is attacker-influenced (a title built from
# log fields), so it goes through escape.slack: no <!channel> or link from
# data reaches the channel.
run contains {
	"id": "notify_slack",
	"uses": "slack.post",
	"args": {
		"secret_webhook_url": {"secret": input.env.SLACK_WEBHOOK_SECRET},
		"text": sprintf("*New source IPs* on _%s_: %s", [
			escape.slack(input.alert.title),
			concat(", ", [escape.slack(ip) | some ip in new_source_ips]),
		]),
	},
} if {
	lookups_done
	not benign
	input.env.SLACK_WEBHOOK_SECRET
}
