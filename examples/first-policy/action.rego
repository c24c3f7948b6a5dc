# Page on-call for high and critical alerts, at most once per rule (Matano
# names an alert after its rule) per hour: the page persists an attribute
# that lives for an hour, and an alert that finds it does not page.
package action

page_key := sprintf("paged:%s", [input.alert.title])

paged_recently if {
	some a in input.alert.attrs
	a.key == page_key
}

run contains {
	"id": "page",
	"uses": "pagerduty.trigger",
	"args": {"secret_routing_key": {"secret": "alert-responder/pagerduty", "key": "routing_key"}},
	"commit": [{"key": page_key, "value": true, "persist": true, "ttl": 3600}],
} if {
	input.seq == 0
	input.alert.severity in {"high", "critical"}
	not paged_recently
}
