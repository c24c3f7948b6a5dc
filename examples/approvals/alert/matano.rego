# Every Matano alert change is an alert about a host; alerts about one
# host are decided one at a time (their namespace).
package alert.matano

alert contains {
	"title": input.updated_alert.title,
	"severity": input.updated_alert.severity,
	"source": "matano",
	"namespace": "hosts",
} if true
