package action_test

import data.action

high := {"title": "Root login", "severity": "high", "attrs": []}

test_pages_a_high_alert if {
	runs := action.run with input as {"alert": high, "seq": 0, "called": [], "env": {}}
	some r in runs
	r.id == "page"
	r.commit[0].key == "paged:Root login"
}

test_does_not_page_a_rule_paged_within_the_hour if {
	paged := object.union(high, {"attrs": [{"key": "paged:Root login", "value": true, "persist": true}]})
	runs := action.run with input as {"alert": paged, "seq": 0, "called": [], "env": {}}
	count(runs) == 0
}

test_does_not_page_a_low_alert if {
	low := object.union(high, {"severity": "low"})
	runs := action.run with input as {"alert": low, "seq": 0, "called": [], "env": {}}
	count(runs) == 0
}
