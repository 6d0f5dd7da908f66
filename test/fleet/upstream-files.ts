/**
 * Text of the files upstream puts into its release bundles, per containerd line. The bundles the
 * mirror builds carry these so hoist installs exactly what a user of the real release gets.
 */

const LICENSE_HEADER = `# Copyright The containerd Authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.
`;

function numeric(v: string): number[] {
  return v.split('.').map(Number);
}

export function versionAtLeast(v: string, min: string): boolean {
  const a = numeric(v);
  const b = numeric(min);
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

export function compareVersions(a: string, b: string): number {
  return versionAtLeast(a, b) ? (versionAtLeast(b, a) ? 0 : 1) : -1;
}

/** containerd.service as shipped for containerd version `v` (1.4: LimitNOFILE=1048576; 1.7 adds dbus.service; 2.x drops LimitNOFILE and local-fs.target). */
export function containerdUnit(v: string): string {
  const major2 = versionAtLeast(v, '2.0.0');
  const after = major2
    ? 'network.target dbus.service'
    : versionAtLeast(v, '1.7.0')
      ? 'network.target local-fs.target dbus.service'
      : 'network.target local-fs.target';
  const nofile = major2 ? '' : versionAtLeast(v, '1.5.0') ? 'LimitNOFILE=infinity\n' : 'LimitNOFILE=1048576\n';
  return `${LICENSE_HEADER}
[Unit]
Description=containerd container runtime
Documentation=https://containerd.io
After=${after}

[Service]
ExecStartPre=-/sbin/modprobe overlay
ExecStart=/usr/local/bin/containerd

Type=notify
Delegate=yes
KillMode=process
Restart=always
RestartSec=5

# Having non-zero Limit*s causes performance problems due to accounting overhead
# in the kernel. We recommend using cgroups to do container-local accounting.
LimitNPROC=infinity
LimitCORE=infinity
${nofile}
# Comment TasksMax if your systemd version does not supports it.
# Only systemd 226 and above support this version.
TasksMax=infinity
OOMScoreAdjust=-999

[Install]
WantedBy=multi-user.target
`;
}

export const CRICTL_YAML = `runtime-endpoint: unix:///run/containerd/containerd.sock
`;

export const CNI_CONFLIST = `{
  "cniVersion": "1.0.0",
  "name": "containerd-net",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "promiscMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [
          [{
            "subnet": "10.88.0.0/16"
          }],
          [{
            "subnet": "2001:4860:4860::/64"
          }]
        ],
        "routes": [
          { "dst": "0.0.0.0/0" },
          { "dst": "::/0" }
        ]
      }
    },
    {
      "type": "portmap",
      "capabilities": {"portMappings": true}
    }
  ]
}
`;

export const CRI_DEPRECATED_TXT = `The cri-containerd-(cni-)-VERSION-OS-ARCH.tar.gz release bundles have been deprecated since containerd v1.6.22.
The cri-containerd-(cni-)-VERSION-OS-ARCH.tar.gz release bundles will be removed in containerd v2.0.

These bundles are replaced by the containerd-VERSION-OS-ARCH.tar.gz and containerd-static-VERSION-OS-ARCH.tar.gz bundles.
`;

export function clusterVersionFile(v: string): string {
  return `CONTAINERD_VERSION: '${v}'\n`;
}

/** Shape of runc's clear-signed checksum file; the signature block is a placeholder no key verifies. */
export function clearSigned(body: string): string {
  return `-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

${body.replace(/\n$/, '')}
-----BEGIN PGP SIGNATURE-----

iHUEARYIAB0WIQRob2lzdC1mbGVldCB0ZXN0IG1pcnJvcgAAAAAACgkQAAAAAAAA
AAAAAAEA/2hvaXN0LWZsZWV0LXVuc2lnbmVkLXRlc3QtbWlycm9yLWNvcHkAAAA=
=hoist
-----END PGP SIGNATURE-----
`;
}
