package bench

import "testing"

// TestCgroupDir finds this process's cgroup directory in each hierarchy
// from mountinfo and /proc/self/cgroup as the kernel writes them: a
// hybrid host (v1 cpu controller, v2 without controllers) and a container
// whose mounts show only its own subtree.
func TestCgroupDir(t *testing.T) {
	hybrid := []byte(`25 30 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
29 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:28 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpuset
`)
	hybridOwn := []byte("3:cpuset:/\n2:cpu,cpuacct:/user.slice\n0::/user.slice/session-1.scope\n")
	container := []byte(`700 690 0:30 /docker/abc /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw
`)
	containerOwn := []byte("0::/docker/abc/worker\n")
	cpusetOnly := []byte(`30 25 0:28 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpuset
`)
	for _, c := range []struct {
		name           string
		mountinfo, own []byte
		version        int
		want           string
		found          bool
	}{
		{"hybrid v1", hybrid, hybridOwn, 1, "/sys/fs/cgroup/cpu,cpuacct/user.slice", true},
		{"hybrid v2", hybrid, hybridOwn, 2, "/sys/fs/cgroup/unified/user.slice/session-1.scope", true},
		{"cpuset is not cpu", cpusetOnly, hybridOwn, 1, "", false},
		{"container v2", container, containerOwn, 2, "/sys/fs/cgroup/worker", true},
		{"container has no v1", container, containerOwn, 1, "", false},
	} {
		got, found := cgroupDir(c.mountinfo, c.own, c.version)
		if got != c.want || found != c.found {
			t.Errorf("%s: %q, %v; want %q, %v", c.name, got, found, c.want, c.found)
		}
	}
}
