/**
 * A client of Firecracker's REST API over its Unix socket. Request bodies follow
 * Firecracker's own schema (shared/reference/firecracker-api-v1.16.1.yaml); tests check every
 * request this client sends against that schema.
 */
import http from 'node:http';

export class FirecrackerApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly faultMessage: string,
  ) {
    super(`Firecracker ${method} ${path} → ${status}: ${faultMessage}`);
    this.name = 'FirecrackerApiError';
  }
}

export interface BootSource {
  kernel_image_path: string;
  boot_args?: string;
  initrd_path?: string;
}
export interface Drive {
  drive_id: string;
  is_root_device: boolean;
  path_on_host: string;
  is_read_only: boolean;
  cache_type?: 'Unsafe' | 'Writeback';
}
export interface MachineConfig {
  vcpu_count: number;
  mem_size_mib: number;
  smt?: boolean;
  track_dirty_pages?: boolean;
}
export interface NetworkInterface {
  iface_id: string;
  host_dev_name: string;
  guest_mac?: string;
}
export interface Vsock {
  guest_cid: number;
  uds_path: string;
}

export class FirecrackerApi {
  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 10_000,
  ) {}

  private request(method: string, path: string, body?: unknown): Promise<unknown> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: this.socketPath,
          method,
          path,
          headers: {
            accept: 'application/json',
            ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
          },
          timeout: this.timeoutMs,
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => {
            const text = Buffer.concat(parts).toString('utf8');
            let json: unknown;
            try {
              json = text ? JSON.parse(text) : undefined;
            } catch {
              json = undefined;
            }
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve(json);
            else {
              const fault = (json as { fault_message?: string } | undefined)?.fault_message ?? text;
              reject(new FirecrackerApiError(method, path, status, fault || 'no message'));
            }
          });
        },
      );
      req.on('timeout', () =>
        req.destroy(new Error(`Firecracker ${method} ${path}: no answer in ${this.timeoutMs} ms`)),
      );
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  }

  describe(): Promise<unknown> {
    return this.request('GET', '/');
  }
  putBootSource(b: BootSource): Promise<unknown> {
    return this.request('PUT', '/boot-source', b);
  }
  putDrive(d: Drive): Promise<unknown> {
    return this.request('PUT', `/drives/${encodeURIComponent(d.drive_id)}`, d);
  }
  putMachineConfig(m: MachineConfig): Promise<unknown> {
    return this.request('PUT', '/machine-config', m);
  }
  putNetworkInterface(n: NetworkInterface): Promise<unknown> {
    return this.request('PUT', `/network-interfaces/${encodeURIComponent(n.iface_id)}`, n);
  }
  putVsock(v: Vsock): Promise<unknown> {
    return this.request('PUT', '/vsock', v);
  }
  instanceStart(): Promise<unknown> {
    return this.request('PUT', '/actions', { action_type: 'InstanceStart' });
  }
  pause(): Promise<unknown> {
    return this.request('PATCH', '/vm', { state: 'Paused' });
  }
  resume(): Promise<unknown> {
    return this.request('PATCH', '/vm', { state: 'Resumed' });
  }
  createSnapshot(snapshotPath: string, memFilePath: string): Promise<unknown> {
    return this.request('PUT', '/snapshot/create', {
      snapshot_type: 'Full',
      snapshot_path: snapshotPath,
      mem_file_path: memFilePath,
    });
  }
  loadSnapshot(snapshotPath: string, memFilePath: string, resumeVm = true): Promise<unknown> {
    return this.request('PUT', '/snapshot/load', {
      snapshot_path: snapshotPath,
      mem_backend: { backend_type: 'File', backend_path: memFilePath },
      resume_vm: resumeVm,
    });
  }
}
