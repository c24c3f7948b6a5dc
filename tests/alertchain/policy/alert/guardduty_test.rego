# Tested as AlertChain's users test alert policies: opa test over the
# policy directory, the event read from testdata/ (loaded by directory).
package alert.aws_guardduty

import rego.v1

test_high_severity_alerts if {
	result := alert with input as data.alert.testdata.aws_guardduty
	count(result) == 1
	some a in result
	a.title == data.alert.testdata.aws_guardduty.title
	a.namespace == "guardduty/i-99999999"
}

test_low_severity_is_quiet if {
	result := alert with input as json.patch(data.alert.testdata.aws_guardduty, [{"op": "replace", "path": "/severity", "value": 2}])
	count(result) == 0
}

test_recon_is_ignored if {
	result := alert with input as json.patch(data.alert.testdata.aws_guardduty, [{"op": "replace", "path": "/type", "value": "Recon:EC2/PortProbeUnprotectedPort"}])
	count(result) == 0
}
