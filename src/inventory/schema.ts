import { s, type Infer } from '../util/schema.js';
import { secretRefSchema } from '../util/secret-ref.js';

const vars = s.record(s.unknown()).describe('variables for tasks and templates');

const connection = {
  user: s.string().optional().describe('SSH login user'),
  port: s.int(1, 65535).optional().describe('SSH port'),
  identity_file: s.string().optional().describe('private key file'),
  jump: s.string().optional().describe('bastion: an inventory host name or [user@]host[:port]'),
  become: s.bool().optional().describe('run commands through sudo (as become_user)'),
  become_user: s
    .string(/^[a-z_][a-z0-9_.-]*\$?$/i, 'a user name')
    .optional()
    .describe('user commands run as under become (default root)'),
  become_password_file: s.string().optional().describe('file holding the sudo password (mode 0600); else -K or HOIST_BECOME_PASSWORD'),
  become_password: secretRefSchema
    .optional()
    .describe(
      'the sudo password by reference: { env = "NAME" }, { file = "path" } (0600) or { command = "pass show sudo/deploy" } (run once on the controller); never the password itself',
    ),
  identity_passphrase: secretRefSchema
    .optional()
    .describe(
      'the passphrase of identity_file (or of the ssh_config identities) by reference, like become_password; else the agent, HOIST_SSH_PASSPHRASE or a prompt',
    ),
  connect_timeout: s.int(1, 600).optional().describe('seconds to wait for the SSH handshake'),
  command_timeout: s.int(1, 86400).optional().describe('seconds one remote command may take'),
};

export const defaultsSchema = s.object({
  ...connection,
  known_hosts_file: s.string().optional().describe('known_hosts file used to check host keys'),
  declare: s
    .list(s.string(/^[A-Za-z_]\w*$/, 'a variable name'))
    .optional()
    .describe('site variables this inventory sets for playbooks and templates hoist does not ship: known to every run, so no playbook calls them unknown'),
  vars: vars.optional(),
});

export const groupSchema = s.object({
  ...connection,
  hosts: s.list(s.string()).optional().describe('inventory host names in the group'),
  children: s.list(s.string()).optional().describe("groups whose hosts belong to this one too (their vars win over this group's)"),
  vars: vars.optional(),
});

export const hostSchema = s.object({
  address: s.string(/^\S+$/, 'a host name or IP address'),
  ...connection,
  vars: vars.optional(),
});

export const inventorySchema = s.object({
  defaults: defaultsSchema.optional(),
  groups: s.record(groupSchema).optional(),
  hosts: s.record(hostSchema),
});

export type InventoryFile = Infer<typeof inventorySchema>;
export type HostEntry = Infer<typeof hostSchema>;
