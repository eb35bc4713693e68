// Package buildcontext checks the images' build context. Its tests read .dockerignore with
// Docker's own pattern matcher (github.com/moby/patternmatcher), decide what the context holds
// both as BuildKit's walker does and as older engines do (Docker 20.10, the legacy builder),
// check that the two agree, copy the files admitted, and build every binary the Dockerfiles
// build from that copy, as `docker build` would: a file the build needs (an embedded asset,
// say) cannot drop out of the context unnoticed, on any engine.
//
// The package has no code outside its tests.
package buildcontext
