// A playbook of two scenarios (AlertChain's `scenarios` form): the same
// critical finding, with and without the stop after the attachment.
local event = import 'events/guardduty_critical.json';
local env = { JIRA_TOKEN: 'jira-test-not-a-token' };

{
  scenarios: [
    {
      id: 'critical',
      title: 'A critical finding: a Jira ticket, the finding attached, a comment',
      env: env,
      events: [{
        schema: 'aws_guardduty',
        input: event,
        actions: { 'jira.create_issue': [{ id: '10001', key: 'SEC-7' }] },
      }],
    },
    {
      id: 'critical_stopped',
      title: 'The same, stopped after the attachment; no Jira answer mocked',
      env: env { STOP_AFTER_ATTACH: '1' },
      events: [{ schema: 'aws_guardduty', input: event }],
    },
  ],
}
