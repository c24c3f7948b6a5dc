# An AlertChain action policy as its users write it: package action, a set
# `run` of entries seeing input.alert, input.seq, input.called, input.env.
package action

import rego.v1

# Round 0: ask ChatGPT, keep its answer as an attribute (a relative path,
# as AlertChain's docs write it).
run contains {
	"id": "ask-chatgpt",
	"name": "summarise the finding",
	"uses": "chatgpt.query",
	"args": {
		"secret_api_key": input.env.CHATGPT_API_KEY,
		"prompt": "Summarise this GuardDuty finding for an on-call engineer.",
	},
	"commit": [{"key": "summary", "path": "choices[0].message.content"}],
} if {
	input.seq == 0
	not critical
}

# One ticket per namespace: the issue number is persisted, so the next
# alert of the same instance comments on it instead.
run contains {
	"id": "open-issue",
	"uses": "github.create_issue",
	"args": {
		"owner": "sec",
		"repo": "alerts",
		"secret_token": input.env.GITHUB_TOKEN,
		"title": input.alert.title,
		"body": summary,
	},
	"commit": [{"key": "issue_number", "path": "$.number", "persist": true}],
} if {
	summary
	not issue_number
}

run contains {
	"id": "comment-issue",
	"uses": "github.create_comment",
	"args": {
		"owner": "sec",
		"repo": "alerts",
		"secret_token": input.env.GITHUB_TOKEN,
		"issue_number": issue_number,
		"body": sprintf("Seen again: %s", [input.alert.title]),
	},
} if {
	summary
	issue_number
	not opened_this_time
}

# A counter kept per namespace: a commit-only entry with a fixed id that
# replaces the attribute each alert.
run contains {
	"id": "count",
	"commit": [{
		"id": "seen_count",
		"key": "seen_count",
		"value": seen_count + 1,
		"persist": true,
	}],
} if {
	input.seq == 0
}

# Then tell Slack, forced: a Slack outage must not fail the workflow.
run contains {
	"id": "notify",
	"uses": "slack.post",
	"force": true,
	"args": {
		"secret_url": input.env.SLACK_WEBHOOK_URL,
		"channel": "#security",
		"body": summary,
		"color": "#E01E5A",
	},
} if {
	summary
}

summary := attr.value if {
	some attr in input.alert.attrs
	attr.key == "summary"
}

issue_number := attr.value if {
	some attr in input.alert.attrs
	attr.key == "issue_number"
}

opened_this_time if {
	some c in input.called
	c.id == "open-issue"
}

# Critical findings go to Jira (AlertChain's argument names), the finding
# attached as it came (input.alert.raw). The entries have no id: each runs
# in the round it appears in.
critical if {
	some attr in input.alert.attrs
	attr.key == "severity"
	attr.value >= 9
}

jira_args := {
	"user": "secbot@example.com",
	"secret_token": input.env.JIRA_TOKEN,
	"account_id": "5b10a2844c20165700ede21g",
	"base_url": "https://example.atlassian.net",
}

run contains {
	"name": "jira ticket",
	"uses": "jira.create_issue",
	"args": object.union(jira_args, {"project": "SEC", "issue_type": "Task"}),
	# No issue key in the result (nothing mocked): the value stands in.
	"commit": [{"key": "jira_issue", "path": "key", "value": "SEC-UNKNOWN"}],
} if {
	input.seq == 0
	critical
}

run contains {
	"name": "attach the finding",
	"uses": "jira.add_attachment",
	"args": object.union(jira_args, {"issue_id": jira_issue, "file_name": "finding.json", "data": input.alert.raw}),
} if {
	jira_issue
	not called("jira.add_attachment")
}

run contains {
	"name": "say it is attached",
	"uses": "jira.add_comment",
	"args": object.union(jira_args, {"issue_id": jira_issue, "body": "The finding is attached."}),
} if {
	called("jira.add_attachment")
	not called("jira.add_comment")
}

# With STOP_AFTER_ATTACH, the workflow ends with the attachment's round.
run contains {"abort": true} if {
	input.env.STOP_AFTER_ATTACH == "1"
	jira_issue
}

jira_issue := attr.value if {
	some attr in input.alert.attrs
	attr.key == "jira_issue"
}

called(uses) if {
	some c in input.called
	c.uses == uses
}

default seen_count := 0

seen_count := attr.value if {
	some attr in input.alert.attrs
	attr.id == "seen_count"
}
