# Action policy: what to do about an alert, in rounds.
#
# Round 0 looks up every new source IP (http.fetch). Once every lookup has
# been called, round 1 notifies a webhook with what the lookups found, and
# critical alerts also page through SNS. Targets come from `input.env`
# (allow-listed with POLICY_ENV, or `run --env KEY=VALUE`).
package action

intel_base := object.get(input.env, "INTEL_URL", "https://ipinfo.io")

new_source_ips := {ip | some ip in input.alert.data.context_diff.source.ip}

lookup_id(ip) := sprintf("lookup_ip_%s", [ip])

# Round 0: enrichment. `force` lets the workflow go on if a lookup fails.
run contains {
	"id": lookup_id(ip),
	"uses": "http.fetch",
	"args": {"url": sprintf("%s/%s/json", [intel_base, ip]), "timeout_ms": 3000},
	"force": true,
	"commit": [{"key": sprintf("country_%s", [ip]), "path": "$.body.country"}],
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

# Round 1: act on the enrichment.
run contains {
	"id": "notify_webhook",
	"uses": "webhook.post",
	"args": {
		"url": input.env.WEBHOOK_URL,
		"data": {"countries": countries, "severity": input.alert.severity},
	},
} if {
	lookups_done
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
	input.alert.severity == "critical"
	input.env.PAGE_TOPIC_ARN
}
