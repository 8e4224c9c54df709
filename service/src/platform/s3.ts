import { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config.js';

export function createS3Client(config: Config['s3']): S3Client {
  return new S3Client({
    region: config.region,
    endpoint: config.endpoint,
    forcePathStyle: config.forcePathStyle,
    // Without credentials the SDK's default chain applies: IRSA web identity in EKS.
    credentials: config.credentials,
    // s3rver stores aws-chunked streamed uploads with their framing unless checksums are opt-in.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
