/**
 * Notices, once per store and run, when uploads asked for server-side encryption and the
 * server does not confirm it applied it. Never a failure: the data arrived intact, only its
 * protection at rest is in doubt, and the user is the one who can decide.
 *
 * When to warn, and why:
 * - The server answers some *other* encryption than the one asked for (`aws:kms` for `AES256`):
 *   always worth a warning.
 * - It answers the one asked for: confirmed, nothing to say. AWS S3 echoes
 *   `x-amz-server-side-encryption` on PutObject, CreateMultipartUpload and
 *   CompleteMultipartUpload.
 * - It answers nothing: some servers do not echo the header on uploads but do on HEAD, so one
 *   HEAD of the new object decides. Ceph RGW with `rgw_crypt_require_ssl=false` stores the
 *   data unencrypted and shows no encryption on HEAD either; s3rver (the test server) never
 *   encrypts and never echoes. Both deserve the warning, but only once per run, so a run of
 *   many uploads (or a test suite) is not a wall of the same line. A server that confirms on
 *   HEAD is trusted from then on: no HEAD after every upload.
 */
export class EncryptionCheck {
  readonly #asked: string;
  readonly #warn: (message: string) => void;
  #settled = false;

  constructor(asked: string, warn: (message: string) => void) {
    this.#asked = asked;
    this.#warn = warn;
  }

  /**
   * After an upload of `object` (`s3://bucket/key`, for the message) whose answers reported
   * `reported`; `head` reads the object's encryption (undefined: none shown). A HEAD that
   * fails says nothing: the check waits for the next upload.
   */
  async afterUpload(object: string, reported: string | undefined, head: () => Promise<string | undefined>): Promise<void> {
    if (this.#settled || this.#asked === 'none' || reported === this.#asked) return;
    if (reported !== undefined) return this.#once(this.#other(object, reported));
    let shown: string | undefined;
    try {
      shown = await head();
    } catch {
      return;
    }
    if (shown === this.#asked) {
      this.#settled = true;
      return;
    }
    this.#once(
      shown === undefined
        ? `asked for server-side encryption (${this.#asked}) but the server does not say it applied any to ${object}: the data may be stored unencrypted (Ceph RGW does so with rgw_crypt_require_ssl=false; s3rver never encrypts); --s3-sse none stops asking`
        : this.#other(object, shown),
    );
  }

  #other(object: string, reported: string): string {
    return `asked for server-side encryption ${this.#asked}, but the server stored ${object} with ${reported}`;
  }

  #once(message: string): void {
    this.#settled = true;
    this.#warn(message);
  }
}
