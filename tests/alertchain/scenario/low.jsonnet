{
  id: 'low',
  title: 'A low-severity finding raises no alert',
  events: [{ schema: 'aws_guardduty', input: import 'events/guardduty_low.json' }],
}
