# Every Matano alert change is an alert; all of them share one namespace,
# so what one alert persists the next one sees.
package alert.matano

alert contains {
	"title": input.updated_alert.title,
	"severity": input.updated_alert.severity,
	"source": "matano",
	"namespace": "pagerduty-pages",
} if true
