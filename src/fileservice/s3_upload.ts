import { createReadStream } from 'node:fs';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import type { Logger } from '../log.js';
import type { BucketClient, ObjectStoreCounters } from './s3_requests.js';

/**
 * Upload a staged local file under `path` (a new key): one PUT, or parts past partBytes (a failed
 * multipart upload is aborted: nothing is half-published). Every upload is conditional on the key
 * being new (`If-None-Match: *`).
 */
export async function uploadFile(
  client: BucketClient,
  counters: ObjectStoreCounters,
  logger: Logger | undefined,
  partBytes: number,
  path: string,
  file: string,
  size: number,
): Promise<void> {
  const key = client.key(path);
  const part = partBytes;
  if (size <= part) {
    await client.send('upload', path, () =>
      client.s3.send(
        new PutObjectCommand({
          Bucket: client.bucket,
          Key: key,
          Body: createReadStream(file),
          ContentLength: size,
          IfNoneMatch: '*',
        }),
        client.timeLimit(),
      ),
    );
    counters.uploads++;
    return;
  }
  const created = await client.send('start multipart upload', path, () =>
    client.s3.send(new CreateMultipartUploadCommand({ Bucket: client.bucket, Key: key }), client.timeLimit()),
  );
  const uploadId = created.UploadId!;
  try {
    const parts: { ETag: string; PartNumber: number }[] = [];
    for (let at = 0, n = 1; at < size; at += part, n++) {
      const end = Math.min(size, at + part);
      const res = await client.send(`upload part ${n}`, path, () =>
        client.s3.send(
          new UploadPartCommand({
            Bucket: client.bucket,
            Key: key,
            UploadId: uploadId,
            PartNumber: n,
            Body: createReadStream(file, { start: at, end: end - 1 }),
            ContentLength: end - at,
          }),
          client.timeLimit(),
        ),
      );
      parts.push({ ETag: res.ETag!, PartNumber: n });
    }
    await client.send('complete multipart upload', path, () =>
      client.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: client.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
          IfNoneMatch: '*',
        }),
        client.timeLimit(),
      ),
    );
    counters.multipartUploads++;
  } catch (e) {
    // Nothing half-published: the parts go.
    await client
      .send('abort multipart upload', path, () =>
        client.s3.send(
          new AbortMultipartUploadCommand({ Bucket: client.bucket, Key: key, UploadId: uploadId }),
          client.timeLimit(),
        ),
      )
      .catch((err: unknown) => logger?.warn({ err, path }, 'could not abort a failed multipart upload'));
    throw e;
  }
}
