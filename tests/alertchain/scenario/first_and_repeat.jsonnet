// An AlertChain scenario: one file, one scenario; mocked results keyed by
// the action's `uses`, given in turn within each event.
local chatgpt(text) = { choices: [{ message: { role: 'assistant', content: text } }] };

{
  id: 'first_and_repeat',
  title: 'A high-severity finding opens an issue; the same instance again comments on it',
  env: {
    CHATGPT_API_KEY: 'sk-test-not-a-key',
    GITHUB_TOKEN: 'ghp_test_not_a_token',
    SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T0/B0/x',
  },
  events: [
    {
      schema: 'aws_guardduty',
      input: import 'events/guardduty_high.json',
      actions: {
        'chatgpt.query': [chatgpt('SSH brute force against i-99999999.')],
        'github.create_issue': [{ number: 42, html_url: 'https://github.com/sec/alerts/issues/42' }],
      },
    },
    {
      schema: 'aws_guardduty',
      input: import 'events/guardduty_high.json',
      actions: {
        'chatgpt.query': [chatgpt('The same brute force, again.')],
        'github.create_comment': [{ id: 7 }],
      },
    },
  ],
}
