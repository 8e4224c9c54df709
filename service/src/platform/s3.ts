import { S3Client } from '@aws-sdk/client-s3';
import type { Config } from '../config.js';

export function createS3Client(config: Config['s3']): S3Client {
  return new S3Client({
    region: config.region,
    endpoint: config.endpoint,
    forcePathStyle: config.forcePathStyle,
    // Without credentials the SDK's default chain applies: IRSA web identity in EKS.
    credentials: config.credentials,
    // Not every S3-compatible store accepts the SDK's default CRC32 checksum trailers (older MinIO,
    // some gateways), and a presigned URL must not require a checksum the browser cannot compute.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
