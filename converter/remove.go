package converter

import (
	"context"
	"log/slog"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/kubexport/kubexport/internal/contract"
	"github.com/kubexport/kubexport/internal/storage"
)

// RemoveOutputFromEnv is the converter's `remove` mode: it deletes the PDF at the output
// location the environment names, with the storage settings of Job mode. The operator runs it
// for an export cancelled while its batch Job went on, which may have written the PDF anyway:
// the operator itself holds no storage credentials. An object or bucket that is already gone
// counts as removed. It returns the exit code: 0, 1 (transient: retry) or 2.
func RemoveOutputFromEnv(ctx context.Context, logger *slog.Logger, getenv func(string) string) int {
	bucket, key := getenv(contract.EnvOutputBucket), getenv(contract.EnvOutputKey)
	err := removeOutput(ctx, getenv, bucket, key)
	code := ExitCode(err)
	if err != nil {
		logger.Error("Removing the PDF failed", "bucket", bucket, "key", key, "error", err, "exitCode", code)
	} else {
		logger.Info("Removed the PDF of a cancelled export", "bucket", bucket, "key", key)
	}
	return code
}

func removeOutput(ctx context.Context, getenv func(string) string, bucket, key string) error {
	if bucket == "" || key == "" {
		return permanent(contract.ReasonInvalidParameters, nil, "%s and %s are required", contract.EnvOutputBucket, contract.EnvOutputKey)
	}
	client, err := storageClient(getenv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	err = client.RemoveObject(ctx, bucket, key, minio.RemoveObjectOptions{})
	if err == nil || storage.Classify(err) == storage.KindNotFound {
		return nil
	}
	return storageError(err, "removing the PDF", false)
}
