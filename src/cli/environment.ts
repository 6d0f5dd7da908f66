/** Every environment variable hoist reads, for the reference (docs/reference.md) and `hoist reference`. */
export const ENVIRONMENT: readonly { name: string; meaning: string }[] = [
  {
    name: 'HOIST_BECOME_PASSWORD',
    meaning: "the sudo password for become hosts without become_password_file (or use -K on a terminal); only ever written to sudo's own prompt",
  },
  { name: 'HOIST_SSH_PASSPHRASE', meaning: 'passphrase of encrypted identity files that no ssh-agent holds (on a terminal hoist asks instead)' },
  { name: 'HOIST_SSH_CONFIG', meaning: 'an ssh_config file to read instead of ~/.ssh/config and /etc/ssh/ssh_config (as `ssh -F`)' },
  { name: 'HOIST_SSH_SYSTEM_CONFIG', meaning: 'the system-wide ssh_config read after ~/.ssh/config (default /etc/ssh/ssh_config)' },
  { name: 'SSH_AUTH_SOCK', meaning: 'the ssh-agent whose keys are offered (as OpenSSH orders them; IdentitiesOnly honoured)' },
  { name: 'HOIST_LOG', meaning: '`off`: write no log file' },
  {
    name: 'HOIST_LOG_KEEP',
    meaning: 'how many run logs to keep (default 200); at each start the oldest beyond that are removed (only files named as hoist names its logs)',
  },
  {
    name: 'XDG_STATE_HOME',
    meaning:
      'logs go to $XDG_STATE_HOME/hoist/logs (default ~/.local/state/hoist/logs), mode 0600, secrets redacted; the drain journal (hosts owing their after_host hooks) to $XDG_STATE_HOME/hoist/drained',
  },
  {
    name: 'XDG_CACHE_HOME',
    meaning:
      "where hoist keeps V8's compiled code of its CLI, $XDG_CACHE_HOME/hoist/code (default ~/.cache/hoist/code; only if the directory is yours and no one else can write it); the single executable writes its package files (templates, playbooks) to $XDG_CACHE_HOME/hoist/sea/<version>-<id> (default ~/.cache/hoist/sea) on its first run",
  },
  { name: 'HOIST_CODE_CACHE', meaning: '0: compile the CLI on every start instead of keeping its compiled code in $XDG_CACHE_HOME/hoist/code' },
  {
    name: 'NODE_OPTIONS',
    meaning: "read by Node; hoist names its code cache after it (and Node's own flags), since V8 refuses a cache made under other flags",
  },
  {
    name: 'NODE_EXTRA_CA_CERTS',
    meaning:
      "a PEM file of CA certificates trusted for downloads over https besides Node's default store; the hoist command (bin/hoist) keeps Node from reading it at every start-up and hoist reads it when it sets up a download (as with Node, a file it cannot read is left out, and only the certificates before a broken one are used; a failed certificate check names the file); processes hoist starts see it unchanged",
  },
  {
    name: 'NODE_USE_SYSTEM_CA',
    meaning:
      'read by Node (newer versions); when set, the hoist command leaves NODE_EXTRA_CA_CERTS for Node to read at start-up, as it does when NODE_OPTIONS holds --use-openssl-ca or --use-system-ca',
  },
  { name: 'HOIST_DUMP_SCRIPT', meaning: 'a file to write the gathering script to, for debugging what hoist sends to hosts' },
  { name: 'NO_COLOR', meaning: 'no colours in the output' },
  { name: 'CI', meaning: 'plain lines instead of the live terminal view (also when stdout is not a terminal)' },
];
