# Isolate on approval, escalate after 30 minutes without an answer.
#
# Round 0 asks the security lead in Slack. The workflow is suspended until
# the lead clicks (or the callback URL is answered) or 30 minutes pass; it
# then resumes with round 1, the answer in input.called:
#   {"answer": "approve" | "deny", "user": "U…", "answered_at": "…"}
#   {"answer": "timeout"}
package action

lead := "U0LEAD"

run contains {
	"id": "ask-isolate",
	"uses": "approval.request",
	"args": {
		"secret_token": {"secret": "alert-responder/slack", "key": "bot_token"},
		"channel": "C0SECOPS",
		"text": "Isolate the host of this alert?",
		"approvers": [lead],
		"timeout_seconds": 1800,
	},
} if {
	input.seq == 0
	input.alert.severity in {"high", "critical"}
}

answer := a if {
	some c in input.called
	c.id == "ask-isolate"
	c.status == "succeeded"
	a := c.result.answer
}

run contains {
	"id": "isolate",
	"uses": "webhook.post",
	"args": {"url": "https://edr.example.org/isolate", "data": {"approved_by": approver}},
} if {
	answer == "approve"
	some c in input.called
	c.id == "ask-isolate"
	approver := c.result.user
}

run contains {
	"id": "escalate",
	"uses": "pagerduty.trigger",
	"args": {"secret_routing_key": {"secret": "alert-responder/pagerduty", "key": "routing_key"}},
} if answer == "timeout"
