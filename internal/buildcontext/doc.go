// Package buildcontext checks the images' build context. Its tests read .dockerignore with
// Docker's own pattern matcher (github.com/moby/patternmatcher), copy the files it admits,
// and build every binary the Dockerfiles build from that copy, as `docker build` would: a file
// the build needs (an embedded asset, say) cannot drop out of the context unnoticed.
//
// The package has no code outside its tests.
package buildcontext
