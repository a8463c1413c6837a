// Command pylon-vcsim starts the govmomi vCenter simulator (govmomi 0.24, as shipped by
// Debian's golang-github-vmware-govmomi-dev) for Pylon's tests.
//
// It serves SOAP on https://127.0.0.1:<free port>/sdk with a certificate signed by a
// throwaway test CA made at start-up (RSA-2048; rustls refuses the simulator's built-in
// RSA-1024 certificate), prints one line of JSON describing the endpoint and the
// inventory to stdout, and serves until stdin reaches EOF or SIGTERM/SIGINT arrives.
//
// While it serves, each line on stdin is a command that changes the inventory through the
// simulator's own SOAP API (so property collectors see the change like any other), and
// each command is answered by one JSON line {"reply": "ok"} or {"reply": "error: ..."}:
//
//	rename-vm <name> <new name>
//	power-off-vm <name>
//	power-on-vm <name>
//	snapshot-vm <name> <snapshot name>   (CreateSnapshot_Task; the new one becomes current)
//	set-status <type> <name> <status>    (overallStatus of the one VirtualMachine, HostSystem
//	                                      or Datastore so named: green, yellow, red or gray)
//
//	set-alarm <type> <name> <alarm id> <status>  (triggeredAlarmState of that entity: one
//	                                      alarm Alarm:<alarm id> in status red/yellow/green,
//	                                      triggered now; status none empties the list)
//
// No vSphere method sets an entity's overallStatus or triggeredAlarmState (vCenter derives
// them from alarms, which the simulator does not have), so set-status and set-alarm change the simulator's registry directly
// through Map.Update, which also notifies property collectors, as a real change would.
//
// Build: GOPATH=/usr/share/gocode GO111MODULE=off go build -o pylon-vcsim main.go
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type inventory struct {
	Datacenters int    `json:"datacenters"`
	Clusters    int    `json:"clusters"`
	Hosts       int    `json:"hosts"`
	VMs         int    `json:"vms"`
	Datastores  int    `json:"datastores"`
	APIType     string `json:"apiType"`
}

type ready struct {
	URL        string    `json:"url"`
	Host       string    `json:"host"`
	Port       int       `json:"port"`
	CAPem      string    `json:"caPem"`
	LeafSHA256 string    `json:"leafSha256"`
	Inventory  inventory `json:"inventory"`
}

func fatalf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "pylon-vcsim: "+format+"\n", args...)
	os.Exit(2)
}

func main() {
	mode := flag.String("mode", "vpx", "simulator model: vpx (vCenter) or esx (standalone ESXi host)")
	dc := flag.Int("dc", -1, "Model.Datacenter: datacenters (vpx only; -1 = simulator default)")
	cluster := flag.Int("cluster", -1, "Model.Cluster: clusters per datacenter (-1 = default)")
	clusterHost := flag.Int("ch", -1, "Model.ClusterHost: hosts per cluster (-1 = default)")
	host := flag.Int("host", -1, "Model.Host: standalone hosts per datacenter (-1 = default)")
	vm := flag.Int("vm", -1, "Model.Machine: VMs per standalone host and per cluster root resource pool (-1 = default)")
	ds := flag.Int("ds", -1, "Model.Datastore: datastores per datacenter, mounted on all its hosts (-1 = default)")
	username := flag.String("username", "", "accept only this user name (with -password)")
	password := flag.String("password", "", "accept only this password (with -username)")
	delay := flag.Int("delay", 0, "DelayConfig.Delay: milliseconds added to every SOAP call")
	methodDelay := flag.String("method-delay", "", "DelayConfig.MethodDelay: Method=MS,Method2=MS")
	idleTimeout := flag.Duration("idle-timeout", 0, "simulator.SessionIdleTimeout (0 = sessions never expire)")
	sans := flag.String("san", "127.0.0.1", "comma-separated subject alternative names for the leaf certificate")
	flag.Parse()

	if flag.NArg() != 0 {
		fatalf("unexpected arguments: %q", flag.Args())
	}

	var model *simulator.Model
	switch *mode {
	case "vpx":
		model = simulator.VPX()
	case "esx":
		model = simulator.ESX()
	default:
		fatalf("-mode must be vpx or esx, not %q", *mode)
	}

	setInt := func(dst *int, v int) {
		if v >= 0 {
			*dst = v
		}
	}
	setInt(&model.Datacenter, *dc)
	setInt(&model.Cluster, *cluster)
	setInt(&model.ClusterHost, *clusterHost)
	setInt(&model.Host, *host)
	setInt(&model.Machine, *vm)
	setInt(&model.Datastore, *ds)

	model.DelayConfig.Delay = *delay
	if *methodDelay != "" {
		model.DelayConfig.MethodDelay = map[string]int{}
		for _, entry := range strings.Split(*methodDelay, ",") {
			kv := strings.SplitN(strings.TrimSpace(entry), "=", 2)
			if len(kv) != 2 || kv[0] == "" {
				fatalf("-method-delay entry %q is not Method=MS", entry)
			}
			ms, err := strconv.Atoi(kv[1])
			if err != nil || ms < 0 {
				fatalf("-method-delay entry %q: %q is not a number of milliseconds", entry, kv[1])
			}
			model.DelayConfig.MethodDelay[kv[0]] = ms
		}
	}

	if *idleTimeout > 0 {
		simulator.SessionIdleTimeout = *idleTimeout
	}

	if (*username == "") != (*password == "") {
		fatalf("-username and -password must be given together")
	}

	caPEM, leaf, leafDER, err := makeCertificates(strings.Split(*sans, ","))
	if err != nil {
		fatalf("making the test certificates: %v", err)
	}

	// Create() populates simulator.Map and sets model.Service; DelayConfig is copied
	// into the service at the end of Create().
	if err := model.Create(); err != nil {
		fatalf("creating the simulator model: %v", err)
	}
	defer model.Remove() // removes the datastores' temporary directories

	// NewServer() listens on Service.Listen.Host (httptest's 127.0.0.1:0 when empty) and,
	// when Service.TLS is set, calls StartTLS, which keeps Certificates that are present.
	// SessionManager.validLogin accepts only Listen.User when it is set and is not
	// simulator.DefaultLogin; otherwise any non-empty user name and password.
	listen := &url.URL{Host: "127.0.0.1:0"}
	if *username != "" {
		listen.User = url.UserPassword(*username, *password)
	}
	model.Service.Listen = listen
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{leaf}}

	server := model.Service.NewServer()

	addr, ok := server.Listener.Addr().(*net.TCPAddr)
	if !ok || !addr.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		server.Close()
		fatalf("simulator listens on %v, expected 127.0.0.1", server.Listener.Addr())
	}

	sum := sha256.Sum256(leafDER)
	out := ready{
		URL:        fmt.Sprintf("https://127.0.0.1:%d%s", addr.Port, vim25.Path),
		Host:       "127.0.0.1",
		Port:       addr.Port,
		CAPem:      caPEM,
		LeafSHA256: hex.EncodeToString(sum[:]),
		Inventory:  countInventory(),
	}
	line, err := json.Marshal(out)
	if err != nil {
		server.Close()
		fatalf("encoding the ready line: %v", err)
	}
	// os.Stdout is unbuffered: one write, one line.
	if _, err := os.Stdout.Write(append(line, '\n')); err != nil {
		server.Close()
		fatalf("writing the ready line: %v", err)
	}

	stop := make(chan string, 2)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		s := <-signals
		stop <- "signal " + s.String()
	}()
	go func() {
		serveCommands(server.URL, os.Stdin, os.Stdout)
		stop <- "stdin closed"
	}()

	reason := <-stop
	fmt.Fprintf(os.Stderr, "pylon-vcsim: stopping (%s)\n", reason)
	server.Close()
}

// serveCommands runs the commands read from in (see the package comment) until EOF and
// answers each with one JSON line on out.
func serveCommands(sdk *url.URL, in io.Reader, out io.Writer) {
	lines := bufio.NewScanner(in)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) == 0 {
			continue
		}
		reply := "ok"
		if err := runCommand(sdk, fields); err != nil {
			reply = "error: " + err.Error()
		}
		line, _ := json.Marshal(map[string]string{"reply": reply})
		if _, err := out.Write(append(line, '\n')); err != nil {
			return
		}
	}
	// Drain whatever follows an unreadable line so the parent's EOF still stops us.
	_, _ = io.Copy(ioutil.Discard, in)
}

func runCommand(sdk *url.URL, fields []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A client of our own server; its certificate is our throwaway one.
	client, err := govmomi.NewClient(ctx, sdk, true)
	if err != nil {
		return fmt.Errorf("logging in to the simulator: %v", err)
	}
	defer func() { _ = client.Logout(context.Background()) }()

	vmNamed := func(name string) (*object.VirtualMachine, error) {
		views := view.NewManager(client.Client)
		container, err := views.CreateContainerView(ctx, client.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
		if err != nil {
			return nil, err
		}
		defer func() { _ = container.Destroy(context.Background()) }()
		refs, err := container.Find(ctx, []string{"VirtualMachine"}, property.Filter{"name": name})
		if err != nil {
			return nil, err
		}
		if len(refs) != 1 {
			return nil, fmt.Errorf("%d virtual machines are named %q", len(refs), name)
		}
		return object.NewVirtualMachine(client.Client, refs[0]), nil
	}
	wait := func(task *object.Task, err error) error {
		if err != nil {
			return err
		}
		return task.Wait(ctx)
	}

	switch {
	case fields[0] == "rename-vm" && len(fields) == 3:
		vm, err := vmNamed(fields[1])
		if err != nil {
			return err
		}
		return wait(vm.Rename(ctx, fields[2]))
	case fields[0] == "power-off-vm" && len(fields) == 2:
		vm, err := vmNamed(fields[1])
		if err != nil {
			return err
		}
		return wait(vm.PowerOff(ctx))
	case fields[0] == "snapshot-vm" && len(fields) == 3:
		vm, err := vmNamed(fields[1])
		if err != nil {
			return err
		}
		return wait(vm.CreateSnapshot(ctx, fields[2], "made by a Pylon test", false, false))
	case fields[0] == "set-alarm" && len(fields) == 5:
		return setAlarm(fields[1], fields[2], fields[3], fields[4])
	case fields[0] == "set-status" && len(fields) == 4:
		return setStatus(fields[1], fields[2], fields[3])
	case fields[0] == "power-on-vm" && len(fields) == 2:
		vm, err := vmNamed(fields[1])
		if err != nil {
			return err
		}
		return wait(vm.PowerOn(ctx))
	default:
		return fmt.Errorf("unknown command %q", strings.Join(fields, " "))
	}
}

// setAlarm replaces the triggeredAlarmState of the one entity of type kind called name with
// one triggered alarm (or none). The alarm itself does not exist in the simulator, as a
// deleted or unreadable alarm definition would not in a vCenter.
func setAlarm(kind, name, alarm, status string) error {
	entity, err := entityNamed(kind, name)
	if err != nil {
		return err
	}
	states := []types.AlarmState{}
	switch status {
	case "none":
	case "green", "yellow", "red":
		acknowledged := false
		states = append(states, types.AlarmState{
			Key:           alarm + "." + entity.Reference().Value,
			Entity:        entity.Reference(),
			Alarm:         types.ManagedObjectReference{Type: "Alarm", Value: alarm},
			OverallStatus: types.ManagedEntityStatus(status),
			Time:          time.Now().UTC(),
			Acknowledged:  &acknowledged,
		})
	default:
		return fmt.Errorf("unknown alarm status %q", status)
	}
	simulator.Map.WithLock(entity, func() {
		simulator.Map.Update(entity, []types.PropertyChange{
			{Name: "triggeredAlarmState", Val: states},
		})
	})
	return nil
}

// entityNamed finds the one VirtualMachine, HostSystem or Datastore called name.
func entityNamed(kind, name string) (mo.Entity, error) {
	switch kind {
	case "VirtualMachine", "HostSystem", "Datastore":
	default:
		return nil, fmt.Errorf("only VirtualMachine, HostSystem and Datastore are supported, not %q", kind)
	}
	var found []mo.Entity
	for _, entity := range simulator.Map.All(kind) {
		if entity.Entity().Name == name {
			found = append(found, entity)
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("%d objects of type %s are named %q", len(found), kind, name)
	}
	return found[0], nil
}

// setStatus sets the overallStatus of the one entity of type kind called name.
func setStatus(kind, name, status string) error {
	switch status {
	case "green", "yellow", "red", "gray":
	default:
		return fmt.Errorf("unknown status %q", status)
	}
	entity, err := entityNamed(kind, name)
	if err != nil {
		return err
	}
	simulator.Map.WithLock(entity, func() {
		simulator.Map.Update(entity, []types.PropertyChange{
			{Name: "overallStatus", Val: types.ManagedEntityStatus(status)},
		})
	})
	return nil
}

// countInventory counts the entities in the simulator's registry by managed object type.
func countInventory() inventory {
	count := func(kind string) int { return len(simulator.Map.All(kind)) }

	apiType := ""
	if si, ok := simulator.Map.Get(vim25.ServiceInstance).(*simulator.ServiceInstance); ok {
		apiType = si.Content.About.ApiType
	}

	return inventory{
		Datacenters: count("Datacenter"),
		Clusters:    count("ClusterComputeResource"),
		Hosts:       count("HostSystem"),
		VMs:         count("VirtualMachine"),
		Datastores:  count("Datastore"),
		APIType:     apiType,
	}
}

// makeCertificates returns a throwaway CA (PEM) and an RSA-2048 server certificate
// signed by it for the given subject alternative names.
func makeCertificates(sans []string) (string, tls.Certificate, []byte, error) {
	now := time.Now()

	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", tls.Certificate{}, nil, err
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "Pylon vcsim test CA", Organization: []string{"Pylon tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return "", tls.Certificate{}, nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", tls.Certificate{}, nil, err
	}

	leafKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", tls.Certificate{}, nil, err
	}
	leafTemplate := &x509.Certificate{
		SerialNumber:          randomSerial(),
		Subject:               pkix.Name{CommonName: "pylon-vcsim", Organization: []string{"Pylon tests"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, san := range sans {
		san = strings.TrimSpace(san)
		if san == "" {
			continue
		}
		if ip := net.ParseIP(san); ip != nil {
			leafTemplate.IPAddresses = append(leafTemplate.IPAddresses, ip)
		} else {
			leafTemplate.DNSNames = append(leafTemplate.DNSNames, san)
		}
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTemplate, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		return "", tls.Certificate{}, nil, err
	}

	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}))
	leaf := tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}
	return caPEM, leaf, leafDER, nil
}

func randomSerial() *big.Int {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		fatalf("random serial number: %v", err)
	}
	return serial
}
