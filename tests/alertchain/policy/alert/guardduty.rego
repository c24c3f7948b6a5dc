# An AlertChain alert policy as its users write it: package alert.<schema>,
# a set `alert` of {title, description, source, namespace, attrs, refs}.
package alert.aws_guardduty

import rego.v1

alert contains {
	"title": input.title,
	"description": input.description,
	"source": "aws",
	"namespace": sprintf("guardduty/%s", [instance_id]),
	"attrs": [
		{"key": "finding_type", "value": input.type},
		{"key": "severity", "value": input.severity, "type": "number"},
		{"key": "instance_id", "value": instance_id},
		# the same key twice: AlertChain keeps both, each with its own id
		{"key": "region", "value": input.region},
		{"key": "region", "value": input.resource.instanceDetails.availabilityZone},
	],
	"refs": [{
		"title": "GuardDuty finding",
		"url": sprintf("https://console.aws.amazon.com/guardduty/home?region=%s#/findings?search=id%%3D%s", [input.region, input.id]),
	}],
} if {
	input.severity >= 7
	not ignored
}

instance_id := input.resource.instanceDetails.instanceId

ignored if {
	print("finding type:", input.type)
	startswith(input.type, "Recon:")
}
