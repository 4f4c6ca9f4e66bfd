// libcni-client: one conflist ADD, CHECK or DEL through libcni (Debian's
// golang-github-appc-cni-dev), called the way containerd (go-cni) and cri-o (ocicni) call it
// for a pod: CNI_ARGS IgnoreUnknown=1 and the pod's K8S_* keys, and the capability arguments
// portMappings, ips and mac. Built by RuntimeInteropTests in GOPATH mode from the Debian
// source tree; no module download.
//
//	libcni-client -cmd ADD -conflist F -netns P -id ID [-ifname eth0] -path DIRS -cache DIR
//	              [-ports JSON] [-ips 10.0.0.5/24,...] [-mac M] [-args K=V;K=V]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func main() {
	cmd := flag.String("cmd", "ADD", "ADD, CHECK or DEL")
	conflist := flag.String("conflist", "", "the network configuration list")
	netns := flag.String("netns", "", "the container's netns path")
	id := flag.String("id", "", "the container ID")
	ifname := flag.String("ifname", "eth0", "the interface name")
	path := flag.String("path", "/opt/cni/bin", "plugin directories, colon separated")
	cache := flag.String("cache", "/var/lib/cni", "libcni's cache directory")
	ports := flag.String("ports", "", "portMappings capability, as JSON")
	ips := flag.String("ips", "", "ips capability, comma separated")
	mac := flag.String("mac", "", "mac capability")
	extra := flag.String("args", "", "more CNI_ARGS pairs, K=V;K=V (IP=, MAC=)")
	flag.Parse()

	list, err := libcni.ConfListFromFile(*conflist)
	if err != nil {
		fail(err)
	}
	rt := &libcni.RuntimeConf{
		ContainerID:    *id,
		NetNS:          *netns,
		IfName:         *ifname,
		Args:           podArgs(*id),
		CapabilityArgs: map[string]interface{}{},
	}
	for _, pair := range strings.Split(*extra, ";") {
		if kv := strings.SplitN(pair, "=", 2); len(kv) == 2 {
			rt.Args = append(rt.Args, [2]string{kv[0], kv[1]})
		}
	}
	if *ports != "" {
		var pm []map[string]interface{}
		if err := json.Unmarshal([]byte(*ports), &pm); err != nil {
			fail(err)
		}
		rt.CapabilityArgs["portMappings"] = pm
	}
	if *ips != "" {
		rt.CapabilityArgs["ips"] = strings.Split(*ips, ",")
	}
	if *mac != "" {
		rt.CapabilityArgs["mac"] = *mac
	}
	cni := libcni.NewCNIConfigWithCacheDir(strings.Split(*path, ":"), *cache, nil)
	ctx := context.Background()
	switch *cmd {
	case "ADD":
		res, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			fail(err)
		}
		if err := res.Print(); err != nil {
			fail(err)
		}
	case "CHECK":
		err = cni.CheckNetworkList(ctx, list, rt)
	case "DEL":
		err = cni.DelNetworkList(ctx, list, rt)
	default:
		err = fmt.Errorf("unknown -cmd %q", *cmd)
	}
	if err != nil {
		fail(err)
	}
}

// podArgs: the CNI_ARGS containerd and cri-o both send for a pod sandbox.
func podArgs(id string) [][2]string {
	return [][2]string{
		{"IgnoreUnknown", "1"},
		{"K8S_POD_NAMESPACE", "default"},
		{"K8S_POD_NAME", "web-0"},
		{"K8S_POD_INFRA_CONTAINER_ID", id},
		{"K8S_POD_UID", "0f5d3c3a-6c1e-4b7e-9a55-6d0e7e0c0001"},
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}
