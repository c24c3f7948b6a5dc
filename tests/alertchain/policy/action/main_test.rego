# Tested as AlertChain's users test action policies: `play` writes
# play/output/<scenario>/data.json inside the policy directory, then the
# tests read it as data.play.output.<scenario>.
package action

import rego.v1

first := data.play.output.first_and_repeat.results[0]

repeat := data.play.output.first_and_repeat.results[1]

test_first_alert_opens_an_issue if {
	first.alert.namespace == "guardduty/i-99999999"
	some action in first.actions
	action.uses == "github.create_issue"
	action.seq == 1
	action.commit[0].key == "issue_number"
	action.commit[0].value == 42
	not uses(first, "github.create_comment")
}

test_repeat_comments_on_the_persisted_issue if {
	some action in repeat.actions
	action.uses == "github.create_comment"
	action.args.issue_number == 42
	not uses(repeat, "github.create_issue")
}

test_counter_persists_across_alerts if {
	some action in repeat.actions
	action.id == "count"
	action.commit[0].value == 2
}

test_chatgpt_answer_is_committed if {
	some action in first.actions
	action.uses == "chatgpt.query"
	action.seq == 0
	action.commit[0].value == "SSH brute force against i-99999999."
}

test_low_severity_raises_nothing if {
	not data.play.output.low.results
}

uses(result, name) if {
	some action in result.actions
	action.uses == name
}

critical := data.play.output.critical.results[0]

stopped := data.play.output.critical_stopped.results[0]

test_critical_goes_to_jira_with_the_finding_attached if {
	[action.uses | some action in critical.actions; action.uses != ""] == ["jira.create_issue", "jira.add_attachment", "jira.add_comment"]
	some attach in critical.actions
	attach.uses == "jira.add_attachment"
	attach.args.issue_id == "SEC-7"
	attach.seq == 1
	json.unmarshal(attach.args.data).id == "critical-finding"
}

test_abort_stops_after_its_round if {
	[action.uses | some action in stopped.actions; action.uses != ""] == ["jira.create_issue", "jira.add_attachment"]
}

test_a_commit_falls_back_to_its_value if {
	some attach in stopped.actions
	attach.uses == "jira.add_attachment"
	attach.args.issue_id == "SEC-UNKNOWN"
}
